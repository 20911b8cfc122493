#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on their default local ports, starting any that is down.
# Used by .ci/run, `make test` and `make demo`; a no-op when all three already run.
set -euo pipefail

wait_for() {  # wait_for NAME SECONDS COMMAND...: poll COMMAND until it succeeds or the deadline passes
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then echo "ensure-services: $name did not come up within ${seconds}s" >&2; return 1; fi
    sleep 1
  done
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
rabbitmq_up() { rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }

if ! postgres_up; then
  echo "ensure-services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_for PostgreSQL 60 postgres_up
fi

if ! redis_up; then
  echo "ensure-services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis 30 redis_up
fi

if ! rabbitmq_up; then
  echo "ensure-services: starting RabbitMQ"
  rabbitmq-server -detached
  wait_for RabbitMQ 120 rabbitmq_up
fi
echo "ensure-services: PostgreSQL, Redis and RabbitMQ are up"

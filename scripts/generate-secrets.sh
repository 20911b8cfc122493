#!/usr/bin/env bash
# Writes the secrets of the compose stack (docker/compose.yaml, its top-level `secrets:`), one file each:
#
#   scripts/generate-secrets.sh [DIRECTORY]      (default: docker/secrets, which git ignores)
#
# Values are random (openssl, or Python's secrets module where openssl is missing); the URL secrets are
# built from the generated passwords, so the services and their clients agree. Idempotent: a file that
# exists is kept as it is, so running it again changes nothing, and a deleted URL is rebuilt from the
# passwords still there. To use real values (Cashfree's secret key, a managed PostgreSQL), write them into
# the files before the first `docker compose up`; see docker/secrets/README.md.
#
# Permissions: the directory is 0700, so no other account on this machine can reach the files; the files
# are 0644, because compose bind-mounts a secret file with its host owner and mode, and the services read
# them as their own non-root users (payments 10001, rabbitmq, redis, grafana, nobody).
set -euo pipefail

directory=${1:-"$(dirname "$0")/../docker/secrets"}
umask 077
mkdir -p "$directory"
chmod 700 "$directory"

random_hex() {  # random_hex BYTES: that many random bytes as hex (URL-safe: no quoting needed in URLs)
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex "$1"
  else
    python3 -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"
  fi
}

random_base64() {  # random_base64 BYTES: that many random bytes as base64
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -base64 "$1"
  else
    python3 -c 'import base64, secrets, sys; print(base64.b64encode(secrets.token_bytes(int(sys.argv[1]))).decode())' "$1"
  fi
}

put() {  # put NAME VALUE: write DIRECTORY/NAME unless it exists (atomically: no half-written file)
  local path="$directory/$1" staged
  if [ -s "$path" ]; then
    return
  fi
  staged=$(mktemp "$directory/.$1.XXXXXX")
  printf '%s' "$2" >"$staged"
  chmod 644 "$staged"
  mv -f "$staged" "$path"
  echo "generate-secrets: wrote $path"
}

value() {  # value NAME: the contents of DIRECTORY/NAME
  local contents
  contents=$(<"$directory/$1")
  printf '%s' "$contents"
}

# The passwords first: everything below is built from them.
put postgres_password "$(random_hex 24)"
put rabbitmq_password "$(random_hex 24)"
put redis_password "$(random_hex 24)"
put smtp_password "$(random_hex 24)"

postgres=$(value postgres_password)
rabbitmq=$(value rabbitmq_password)
redis=$(value redis_password)
smtp=$(value smtp_password)

# The servers' side. RabbitMQ reads conf.d/*.conf (the image has no *_FILE variables since 3.9); with
# default_user set, the guest user is never created. Redis refuses every command until AUTH.
put rabbitmq_conf "# RabbitMQ's user for the stack (scripts/generate-secrets.sh); read on the first start only.
default_user = payments
default_pass = ${rabbitmq}
"
put redis_conf "# Redis for the stack (scripts/generate-secrets.sh): clients must AUTH with this password.
requirepass ${redis}
"

# The clients' side: the app's *_URL secrets. For TLS, edit them: postgresql://...?sslmode=verify-full,
# amqps://...:5671/, rediss://..., smtp://...?starttls=required (and the servers' certificates).
put database_url "postgresql://payments:${postgres}@postgres:5432/payments"
put rabbitmq_url "amqp://payments:${rabbitmq}@rabbitmq:5672/"
put redis_url "redis://:${redis}@redis:6379/0"
put smtp_url "smtp://payments:${smtp}@smtp:8025"

# The app's own secrets. The sandbox signs its webhooks with the Cashfree key, so web verifies them.
put cashfree_secret_key "$(random_hex 32)"
put jwt_secret "$(random_hex 32)"
put payment_encryption_key "$(random_base64 32)"
put alertmanager_token "$(random_hex 32)"
put grafana_admin_password "$(random_hex 16)"

"""Replaying the event log into empty tables rebuilds exactly the tables the live run built.

The test has a RabbitMQ vhost and a Redis database of its own, so its ``events.log`` holds only its own
events and its Redis holds only the tables its own agents kept: "exactly" can then mean every key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Final

import pytest
from redis.asyncio import Redis

from payments.pipeline import bootstrap
from payments.pipeline.topology import ALERTS_PAYMENTS, FRAUD_PAYMENTS, Binding
from tests.e2e.isolation import emptied, own_vhost
from tests.waiting import eventually

#: A database of its own, emptied first: nothing but this test's tables may be in it.
REDIS_URL = "redis://127.0.0.1:6379/14"
RULES = {
    "velocity": [
        {"name": "user_per_hour", "subject": "user", "window_seconds": 3600, "limit": 100},
        {"name": "ip_amount", "subject": "ip", "measure": "amount", "window_seconds": 600, "limit": 1000000},
    ],
    "failures": [{"name": "ip_failures", "subject": "ip", "window_seconds": 3600, "limit": 100}],
    "spread": [{"name": "users_per_ip", "subject": "ip", "of": "user", "window_seconds": 3600, "limit": 100}],
    "spike": {"window_seconds": 60, "baseline_windows": 5, "min_count": 1000},
}


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with own_vhost("payments-replay") as url:
        yield url


@pytest.fixture
async def own_redis() -> str:
    return await emptied(REDIS_URL)


@pytest.fixture
def environ(environ: dict[str, str], vhost_url: str, own_redis: str) -> dict[str, str]:
    return {
        **environ,
        "RABBITMQ_URL": vhost_url,
        "REDIS_URL": own_redis,
        "FRAUD_RULES": json.dumps(RULES),
        "ALERT_MIN_VOLUME": "2",
    }


#: The queue watch's tables: written by its timer from broker polls (at any moment of the test), not
#: from events, so no replay rebuilds them.
POLLED_TABLES: Final = ("table:alerts.dlq_depths:", "table:alerts.queue_polls:")


async def table_contents(redis: Redis) -> dict[str, object]:
    """Every table key built from events and what it holds (TTLs aside: they count down from when a
    key was written)."""
    contents: dict[str, object] = {}
    async for raw in redis.scan_iter(match="table:*", count=1000):
        key = raw.decode()
        if key.startswith(POLLED_TABLES):
            continue
        kind = (await redis.type(key)).decode()
        if kind == "string":
            contents[key] = await redis.get(key)
        elif kind == "set":
            contents[key] = sorted(await redis.smembers(key))
        elif kind == "zset":
            contents[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            contents[key] = sorted((await redis.hgetall(key)).items())
        else:
            contents[key] = kind
    return contents


def routed_to(bindings: tuple[Binding, ...], routing_key: str) -> bool:
    # The two queues bind exact keys, no wildcards.
    return any(binding.routing_key == routing_key for binding in bindings)


async def test_replaying_the_log_into_empty_tables_rebuilds_the_live_tables_exactly(stack):
    run = uuid.uuid4().hex[:6]
    for n in range(6):
        user, address = f"user-replay-{run}-{n % 3}", f"10.20.{n % 2}.{n + 1}"
        payment = await (await stack.create(user, client_ip=address, amount=f"{100 + n}.00")).json()
        await stack.pay(
            payment["paymentSessionId"], "testfailure@gocash" if n % 3 == 0 else "testsuccess@gocash"
        )
        await stack.verify(user, payment["paymentId"])

    # The database is the whole run's: count only this test's payments' events.
    mine = await stack.rows(
        "SELECT routing_key FROM outbox WHERE payload->>'userId' LIKE $1", f"user-replay-{run}-%"
    )
    keys = [row["routing_key"] for row in mine]
    wanted = {
        "fraud.watch_payments": sum(routed_to(FRAUD_PAYMENTS.bindings, key) for key in keys),
        "alerts.watch_failures": sum(routed_to(ALERTS_PAYMENTS.bindings, key) for key in keys),
    }
    assert wanted["fraud.watch_payments"] >= 12
    assert wanted["alerts.watch_failures"] >= 6

    def handled(agent: str) -> float:
        value = stack.resources.registry.get_sample_value(
            "payments_agent_messages_total", {"agent": agent, "outcome": "ok"}
        )
        return value or 0.0

    await eventually(
        lambda: all(handled(agent) >= count for agent, count in wanted.items()),
        timeout=60,
        what="the fraud and alerts agents to handle every event",
    )
    redis = stack.resources.redis
    live = await table_contents(redis)
    assert len(live) > 10

    for key in live:
        await redis.delete(key)
    assert await table_contents(redis) == {}
    report = await bootstrap.run_replay(
        stack.settings, start=0, end=None, agents=list(wanted), progress=lambda _: None
    )

    rebuilt = await table_contents(redis)
    assert report.read >= wanted["fraud.watch_payments"]
    assert rebuilt == live

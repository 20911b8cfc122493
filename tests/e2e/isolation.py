"""A RabbitMQ vhost and a Redis database of one test's own, for tests that restart, flush or replay
what the rest of the run shares."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis

from tests.conftest import RABBITMQ_BASE_URL


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


@contextmanager
def own_vhost(prefix: str) -> Iterator[str]:
    """A RabbitMQ vhost for one test: its queues, DLQs and ``events.log`` hold only that test's traffic."""
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"{RABBITMQ_BASE_URL}/{vhost}"
    finally:
        rabbitmqctl("delete_vhost", vhost)


async def emptied(redis_url: str) -> str:
    """``redis_url`` (a database no other test uses), emptied first."""
    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    return redis_url

"""The stress tests' stack: the e2e stack (``tests/e2e/stack.py``) on a RabbitMQ vhost and a Redis
database of the test's own, so that queue depths, dead-letter queues and Redis keys hold only what the
test itself did and can be counted exactly. PostgreSQL is the run's shared database: the tests filter
every query by ids they made up themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.conftest import REDIS_TEST_URL
from tests.e2e.conftest import environ  # noqa: F401  (the e2e settings, re-pointed below)
from tests.e2e.isolation import emptied, own_vhost
from tests.e2e.stack import Stack, running_stack

#: Redis database 11 is the stress tests' own (the rest of the suite uses 12 to 15).
STRESS_REDIS_URL = f"{REDIS_TEST_URL.rsplit('/', 1)[0]}/11"


@pytest.fixture
def vhost() -> Iterator[str]:
    """The AMQP URL of a vhost of this test's own."""
    with own_vhost("stress") as url:
        yield url


@pytest.fixture
async def stress_environ(environ: dict[str, str], vhost: str) -> dict[str, str]:  # noqa: F811
    """The e2e settings on the test's own vhost and an emptied Redis database 11."""
    return {**environ, "RABBITMQ_URL": vhost, "REDIS_URL": await emptied(STRESS_REDIS_URL)}


@pytest.fixture
async def stack(stress_environ, aiohttp_server, aiohttp_client, unused_tcp_port) -> AsyncIterator[Stack]:
    async for running in running_stack(stress_environ, aiohttp_server, aiohttp_client, unused_tcp_port):
        yield running

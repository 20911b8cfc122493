"""Broker and Redis fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from redis.asyncio import Redis

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.topology import declare_topology
from payments.bridges.redis.client import open_redis
from tests.integration.redis_support import delete_prefixed, unique_prefix


@pytest.fixture
async def connection(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection to the run's vhost, with the exchanges and the event log declared."""
    async with open_connection(amqp_url, name="integration-test") as connection:
        setup = await connection.channel()
        await declare_topology(setup, ())
        await setup.close()
        yield connection


@pytest.fixture
async def channel(connection: AbstractRobustConnection) -> AbstractChannel:
    return await connection.channel()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    """A Redis client on the tests' database."""
    async with open_redis(redis_url) as client:
        yield client


@pytest.fixture
async def prefix(client: Redis, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    prefix = unique_prefix(request.module.__name__.rsplit(".", 1)[-1])
    yield prefix
    await delete_prefixed(client, prefix)

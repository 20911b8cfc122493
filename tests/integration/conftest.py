"""Broker fixtures shared by the RabbitMQ integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.topology import declare_topology


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

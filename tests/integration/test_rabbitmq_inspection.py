"""Queue depths and the broker health probe, read with passive declares (no management plugin)."""

from __future__ import annotations

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.inspection import QueueDepth, check_broker, queue_depths
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.domain.errors import DependencyUnavailable
from tests.integration.rabbitmq_support import unique
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def _ignore(message: AbstractIncomingMessage) -> None:
    """A consumer that takes nothing off the queue (there is nothing on it)."""


async def test_queue_depths_report_ready_messages_and_consumers_and_flag_missing_queues(
    connection: AbstractRobustConnection, channel: AbstractChannel
) -> None:
    backlog = await channel.declare_queue(unique("test.backlog"), exclusive=True)
    consumed = await channel.declare_queue(unique("test.consumed"), exclusive=True)
    await consumed.consume(_ignore)
    publisher = RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)
    for n in range(3):
        await publisher.publish(exchange="", routing_key=backlog.name, body=b"{}", message_id=f"m{n}")
    missing = unique("test.missing")
    names = [backlog.name, missing, consumed.name]
    expected = [
        QueueDepth(backlog.name, messages=3, consumers=0),
        QueueDepth(missing, messages=0, consumers=0, missing=True),
        QueueDepth(consumed.name, messages=0, consumers=1),
    ]

    async def depths_match() -> bool:
        return await queue_depths(connection, names) == expected

    await eventually(depths_match, what="the expected queue depths")


async def test_queue_depths_of_no_queues_is_empty(connection: AbstractRobustConnection) -> None:
    assert await queue_depths(connection, []) == []


async def test_queue_depths_on_a_closed_connection_raise_dependency_unavailable(amqp_url: str) -> None:
    async with open_connection(amqp_url, name="test-inspection-closed") as connection:
        await connection.close()

        with pytest.raises(DependencyUnavailable):
            await queue_depths(connection, ["anything"])


async def test_the_broker_health_probe_names_the_server_and_its_version(
    connection: AbstractRobustConnection,
) -> None:
    health = await check_broker(connection)

    assert health["status"] == "ok"
    assert health["product"] == "RabbitMQ"
    assert health["version"].count(".") == 2
    assert health["round_trip_seconds"] >= 0


async def test_the_broker_health_probe_on_a_closed_connection_raises_dependency_unavailable(
    amqp_url: str,
) -> None:
    async with open_connection(amqp_url, name="test-health-closed") as connection:
        await connection.close()

        with pytest.raises(DependencyUnavailable, match="closed"):
            await check_broker(connection)

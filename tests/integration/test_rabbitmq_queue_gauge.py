"""RabbitQueueGauge on a real broker: work queues and their DLQs, never retry tiers or missing queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.queue_gauge import RabbitQueueGauge
from payments.bridges.rabbitmq.topology import declare_topology
from payments.domain.alerts.rules import QueueDepth
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.topology import RETRY_TIERS, QueueSpec
from tests.integration.rabbitmq_support import spec_queues_deleted, unique
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def spec(channel: AbstractChannel) -> AsyncIterator[QueueSpec]:
    spec = QueueSpec(unique("it.gauge"))
    await declare_topology(channel, [spec])
    yield spec
    await spec_queues_deleted(channel, spec)


async def _ignore(message: AbstractIncomingMessage) -> None:
    """A consumer that is only there to be counted."""


async def test_the_gauge_reports_each_work_queue_and_its_dlq_but_not_its_retry_tiers(
    connection: AbstractRobustConnection, channel: AbstractChannel, spec: QueueSpec
) -> None:
    publisher = RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)
    for n in range(3):
        await publisher.publish(
            exchange="", routing_key=spec.dead_letter_queue, body=b"{}", message_id=f"d{n}"
        )
    await publisher.publish(
        exchange="", routing_key=spec.retry_queue(RETRY_TIERS[-1]), body=b"{}", message_id="r0"
    )
    # An idle consumer on the (empty) work queue: counted, and it takes nothing.
    work_queue = await channel.declare_queue(spec.name, passive=True)
    await work_queue.consume(_ignore)
    gauge = RabbitQueueGauge(connection, queues=[spec])
    expected = [
        QueueDepth(spec.name, messages=0, consumers=1),
        QueueDepth(spec.dead_letter_queue, messages=3, consumers=0),
    ]

    async def depths_match():  # untyped: `eventually` cannot infer T from an async probe
        return list(await gauge.depths()) == expected

    await eventually(depths_match, what="the gauge's depths")


async def test_a_queue_not_declared_yet_is_left_out(connection: AbstractRobustConnection) -> None:
    gauge = RabbitQueueGauge(connection, queues=[QueueSpec(unique("it.gauge.missing"))])

    assert await gauge.depths() == []


async def test_the_gauge_on_a_closed_connection_raises_dependency_unavailable(amqp_url: str) -> None:
    async with open_connection(amqp_url, name="test-gauge-closed") as connection:
        await connection.close()

        with pytest.raises(DependencyUnavailable):
            await RabbitQueueGauge(connection).depths()

"""Retry tiers return messages to their work queue; the delivery limit sends crash loops to the DLQ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import declare_queue
from payments.pipeline.topology import DELIVERY_LIMIT, RETRY_TIERS, QueueSpec
from tests.integration.rabbitmq_support import get_one, spec_queues_deleted, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def spec(channel: AbstractChannel) -> AsyncIterator[QueueSpec]:
    spec = QueueSpec(unique("test.work"))
    await declare_queue(channel, spec)
    yield spec
    await spec_queues_deleted(channel, spec)


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> RabbitPublisher:
    return RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)


async def test_a_message_in_a_retry_tier_comes_back_to_its_work_queue_with_its_headers(
    channel: AbstractChannel, publisher: RabbitPublisher, spec: QueueSpec
) -> None:
    retry_queue = spec.retry_queue(RETRY_TIERS[0])

    await publisher.publish(
        exchange="",
        routing_key=retry_queue,
        body=b'{"n": 1}',
        message_id="retry-1",
        headers={"x-attempt": 1, "x-error": "gateway timeout"},
        expiration_seconds=0.05,
    )

    work_queue = await channel.get_queue(spec.name)
    message = await get_one(work_queue)
    assert message.message_id == "retry-1"
    assert message.body == b'{"n": 1}'
    assert message.headers["x-attempt"] == 1
    assert message.headers["x-error"] == "gateway timeout"
    deaths = message.headers["x-death"]
    assert isinstance(deaths, list)
    assert [(death["queue"], death["reason"]) for death in deaths if isinstance(death, dict)] == [
        (retry_queue, "expired")
    ]
    await message.ack()


async def test_a_message_requeued_past_the_delivery_limit_ends_up_in_the_dead_letter_queue(
    connection: AbstractRobustConnection,
    channel: AbstractChannel,
    publisher: RabbitPublisher,
    spec: QueueSpec,
) -> None:
    await publisher.publish(exchange="", routing_key=spec.name, body=b"{}", message_id="poison-1")
    deliveries: list[str | None] = []

    async def fail_again(message: AbstractIncomingMessage) -> None:
        deliveries.append(message.message_id)
        await message.nack(requeue=True)

    consumer_channel = await connection.channel()
    await consumer_channel.set_qos(prefetch_count=1)
    work_queue = await consumer_channel.get_queue(spec.name)
    await work_queue.consume(fail_again)

    dead = await get_one(await channel.get_queue(spec.dead_letter_queue))
    assert dead.message_id == "poison-1"
    assert dead.headers["x-first-death-reason"] == "delivery_limit"
    # The broker counts returns: the message is delivered once plus DELIVERY_LIMIT redeliveries.
    assert deliveries == ["poison-1"] * (DELIVERY_LIMIT + 1)
    await dead.ack()
    await consumer_channel.close()

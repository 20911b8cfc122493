"""events.log keeps every event published on any of the five exchanges (the replay log)."""

from __future__ import annotations

import asyncio

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.pipeline.topology import EVENT_LOG_STREAM, ROUTING_KEYS, Exchange
from tests.integration.rabbitmq_support import unique
from tests.waiting import DEADLINE_SECONDS

pytestmark = pytest.mark.integration


async def _read_log_until(connection: AbstractRobustConnection, wanted: set[str]) -> dict[str, str]:
    """Read the stream from its first entry until every id in ``wanted`` was seen; id -> routing key."""
    seen: dict[str, str] = {}
    all_seen = asyncio.Event()
    channel = await connection.channel()
    # A stream consumer must set a prefetch and ack manually; the offset is a consume argument.
    await channel.set_qos(prefetch_count=100)
    stream = await channel.get_queue(EVENT_LOG_STREAM)

    async def on_entry(message: AbstractIncomingMessage) -> None:
        if message.message_id in wanted:
            seen[message.message_id] = message.routing_key or ""
        await message.ack()
        if wanted <= seen.keys():
            all_seen.set()

    await stream.consume(on_entry, arguments={"x-stream-offset": "first"})
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            await all_seen.wait()
    finally:
        await channel.close()
    return seen


async def test_every_event_published_on_any_exchange_also_lands_in_the_event_log(
    connection: AbstractRobustConnection,
) -> None:
    publisher = RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)
    published: dict[str, str] = {}
    for exchange in Exchange:
        message_id = unique(f"log-{exchange.name.lower()}")
        routing_key = ROUTING_KEYS[exchange][0]
        await publisher.publish(
            exchange=exchange.value, routing_key=routing_key, body=b"{}", message_id=message_id
        )
        published[message_id] = routing_key

    assert await _read_log_until(connection, set(published)) == published

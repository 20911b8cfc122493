"""RabbitPublisher against a real broker: confirmed, persistent, and every failure typed."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.publisher import RabbitPublisher, UnroutableMessage
from payments.domain.errors import DependencyUnavailable, Retry
from payments.pipeline.topology import Exchange
from tests.integration.rabbitmq_support import get_one, unique
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> RabbitPublisher:
    return RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)


async def test_a_published_message_arrives_persistent_with_its_id_headers_type_and_timestamp(
    channel: AbstractChannel, publisher: RabbitPublisher
) -> None:
    routing_key = unique("payment.test")
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(Exchange.PAYMENT.value, routing_key)
    sent_at = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)

    await publisher.publish(
        exchange=Exchange.PAYMENT.value,
        routing_key=routing_key,
        body=b'{"paymentId": "pay_1"}',
        message_id="evt-1",
        headers={"x-request-id": "req-1", "attempt": 2, "ratio": 0.5, "replayed": False, "userId": None},
        message_type="PaymentCaptured",
        timestamp=sent_at,
    )

    message = await get_one(queue)
    assert message.body == b'{"paymentId": "pay_1"}'
    assert message.message_id == "evt-1"
    assert message.headers == {
        "x-request-id": "req-1",
        "attempt": 2,
        "ratio": 0.5,
        "replayed": False,
        "userId": None,
    }
    assert message.content_type == "application/json"
    assert message.type == "PaymentCaptured"
    assert message.timestamp == sent_at
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    await message.ack()


async def test_publishing_to_the_default_exchange_reaches_the_queue_of_that_name(
    channel: AbstractChannel, publisher: RabbitPublisher
) -> None:
    queue = await channel.declare_queue(exclusive=True)

    await publisher.publish(exchange="", routing_key=queue.name, body=b"{}", message_id="direct-1")

    message = await get_one(queue)
    assert message.message_id == "direct-1"
    await message.ack()


async def test_a_routing_key_no_queue_is_bound_for_raises_unroutable_message(
    channel: AbstractChannel, publisher: RabbitPublisher
) -> None:
    # Not one of our five exchanges: events.log is bound to those with "#", so everything published on
    # them is routable (to the log, at least).
    exchange = await channel.declare_exchange(unique("test.exchange"), "topic", auto_delete=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "bound.key")

    with pytest.raises(UnroutableMessage) as raised:
        await publisher.publish(
            exchange=exchange.name, routing_key="unbound.key", body=b"{}", message_id="lost-1"
        )

    assert isinstance(raised.value, Retry)
    assert "unbound.key" in str(raised.value)


async def test_a_message_for_a_missing_queue_on_the_default_exchange_raises_unroutable_message(
    publisher: RabbitPublisher,
) -> None:
    with pytest.raises(UnroutableMessage):
        await publisher.publish(exchange="", routing_key=unique("no.such.queue"), body=b"{}", message_id="x")


async def test_a_message_for_a_missing_exchange_raises_unroutable_message(publisher: RabbitPublisher) -> None:
    with pytest.raises(UnroutableMessage):
        await publisher.publish(
            exchange=unique("no.such.exchange"), routing_key="a", body=b"{}", message_id="x"
        )


async def test_a_publisher_recovers_after_the_broker_closed_its_channel_for_a_missing_exchange(
    channel: AbstractChannel, publisher: RabbitPublisher
) -> None:
    queue = await channel.declare_queue(exclusive=True)
    with pytest.raises(UnroutableMessage):
        await publisher.publish(
            exchange=unique("no.such.exchange"), routing_key="a", body=b"{}", message_id="x"
        )

    async def published_again() -> bool:
        # Until the robust channel has reopened, publishing fails with DependencyUnavailable (retryable).
        try:
            await publisher.publish(exchange="", routing_key=queue.name, body=b"{}", message_id="after-404")
        except DependencyUnavailable:
            return False
        return True

    await eventually(published_again, what="the publisher's channel to reopen")
    assert (await get_one(queue)).message_id == "after-404"


async def test_unroutable_is_reported_on_a_channel_that_raises_on_returns_too(
    connection: AbstractRobustConnection, channel: AbstractChannel
) -> None:
    strict = RabbitPublisher(
        await connection.channel(publisher_confirms=True, on_return_raises=True), timeout=5.0
    )

    with pytest.raises(UnroutableMessage):
        await strict.publish(exchange="", routing_key=unique("no.such.queue"), body=b"{}", message_id="x")


async def test_a_message_the_broker_nacks_raises_dependency_unavailable(
    channel: AbstractChannel, publisher: RabbitPublisher
) -> None:
    full = await channel.declare_queue(
        exclusive=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
    )

    with pytest.raises(DependencyUnavailable) as raised:
        await publisher.publish(exchange="", routing_key=full.name, body=b"{}", message_id="refused-1")

    assert not isinstance(raised.value, UnroutableMessage)


async def test_publishing_after_the_connection_closed_raises_dependency_unavailable(amqp_url: str) -> None:
    async with open_connection(amqp_url, name="test-publisher-closed") as connection:
        publisher = RabbitPublisher(await connection.channel(publisher_confirms=True), timeout=5.0)
        await connection.close()

        with pytest.raises(DependencyUnavailable):
            await publisher.publish(exchange="", routing_key="anything", body=b"{}", message_id="late-1")


async def test_a_publisher_refuses_a_channel_without_publisher_confirms(
    connection: AbstractRobustConnection,
) -> None:
    with pytest.raises(ValueError, match="publisher_confirms"):
        RabbitPublisher(await connection.channel(publisher_confirms=False), timeout=5.0)


async def test_a_naive_timestamp_is_refused_before_anything_is_sent(publisher: RabbitPublisher) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await publisher.publish(
            exchange="", routing_key="anything", body=b"{}", message_id="x", timestamp=datetime(2025, 1, 1)
        )

"""Declaring the broker topology of DESIGN §3 from the names in ``payments.pipeline.topology``.

Every declaration here is idempotent: declaring again with the same arguments is a no-op on the broker,
so ``payments topology`` and every process start may run it. Changing an argument of an existing queue
is refused by the broker (PRECONDITION_FAILED); such a change needs a migration that re-creates the queue.

The queue arguments are built by the small pure functions below so unit tests can inspect them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractQueue
from pamqp.common import FieldTable

from payments.pipeline.topology import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    EVENT_LOG_MAX_AGE,
    EVENT_LOG_MAX_BYTES,
    EVENT_LOG_STREAM,
    RETRY_TIERS,
    Exchange,
    QueueSpec,
    RetryTier,
)

#: Routing key that binds the event log to everything published on an exchange.
EVERYTHING: Final = "#"

#: The default exchange: routes a message to the queue named by its routing key.
DEFAULT_EXCHANGE: Final = ""


async def declare_topology(channel: AbstractChannel, queues: Sequence[QueueSpec]) -> None:
    """Declare the five exchanges, the dead-letter exchange, the event log and each queue in ``queues``."""
    for exchange in Exchange:
        await channel.declare_exchange(exchange.value, ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT, durable=True)
    event_log = await channel.declare_queue(EVENT_LOG_STREAM, durable=True, arguments=event_log_arguments())
    for exchange in Exchange:
        await event_log.bind(exchange.value, EVERYTHING)
    for spec in queues:
        await declare_queue(channel, spec)


async def declare_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    """Declare ``spec``'s work queue and bindings, its retry-tier queues and its DLQ; return the work queue.

    The exchanges the bindings name must exist already (``declare_topology`` declares them first).
    """
    work_queue = await channel.declare_queue(spec.name, durable=True, arguments=work_queue_arguments(spec))
    for binding in spec.bindings:
        await work_queue.bind(binding.exchange.value, binding.routing_key)
    for tier in RETRY_TIERS:
        await channel.declare_queue(
            spec.retry_queue(tier), durable=True, arguments=retry_queue_arguments(spec, tier)
        )
    dead_letter_queue = await channel.declare_queue(
        spec.dead_letter_queue, durable=True, arguments=dead_letter_queue_arguments()
    )
    await dead_letter_queue.bind(DEAD_LETTER_EXCHANGE, spec.dead_letter_queue)
    return work_queue


def work_queue_arguments(spec: QueueSpec) -> FieldTable:
    """A quorum work queue that dead-letters to ``spec``'s DLQ once a message exceeds the delivery limit."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": spec.dead_letter_queue,
        **_at_least_once_dead_lettering(),
    }


def retry_queue_arguments(spec: QueueSpec, tier: RetryTier) -> FieldTable:
    """A quorum queue where a message waits ``tier``'s delay, then goes back to ``spec``'s work queue.

    ``x-message-ttl`` is the upper bound; a publisher may shorten one message's wait with the AMQP
    ``expiration`` property (the runtime does, to scale delays in tests), never lengthen it.
    """
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": _milliseconds(tier.delay_seconds),
        # The default exchange routes by queue name, so no binding is needed to get back home.
        "x-dead-letter-exchange": DEFAULT_EXCHANGE,
        "x-dead-letter-routing-key": spec.name,
        **_at_least_once_dead_lettering(),
    }


def dead_letter_queue_arguments() -> FieldTable:
    """The DLQ keeps messages until an operator replays or drops them: no TTL, no further dead-lettering."""
    return {"x-queue-type": "quorum"}


def event_log_arguments() -> FieldTable:
    """The replay log: a stream trimmed by age and by size, whichever limit is reached first."""
    return {
        "x-queue-type": "stream",
        "x-max-age": EVENT_LOG_MAX_AGE,
        "x-max-length-bytes": EVENT_LOG_MAX_BYTES,
    }


def _at_least_once_dead_lettering() -> FieldTable:
    # The default (at-most-once) strategy drops a message if the dead-letter target does not confirm it;
    # at-least-once keeps it until it does, and RabbitMQ only allows it with reject-publish overflow.
    return {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


def _milliseconds(seconds: float) -> int:
    return round(seconds * 1000)

"""Consuming a work queue: one channel, an explicit prefetch, manual acknowledgements.

The runtime (``pipeline/runtime.py``) reads ``Delivery`` objects from a ``QueueConsumer`` and decides
when to settle them; nothing here acks on its own. The connection is robust: after a reconnect
aio-pika restores the channel, its QoS and the consumer, and deliveries held from the dead channel
can no longer be settled (the broker redelivers them), which ``Delivery`` reports as ``False``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aiormq.exceptions import AMQPError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message handed to the runtime; settle it exactly once with ``ack`` or ``requeue``."""

    body: bytes
    message_id: str | None
    routing_key: str
    exchange: str
    headers: Mapping[str, Any]
    content_type: str | None
    message_type: str | None
    timestamp: datetime | None
    redelivered: bool
    #: Set on requests (``RpcClient``): where the answer goes, and the id it must carry.
    reply_to: str | None
    correlation_id: str | None
    _message: AbstractIncomingMessage

    async def ack(self) -> bool:
        """Acknowledge; False if the channel it came on is gone (the broker will redeliver it)."""
        return await _settle(self._message.ack)

    async def requeue(self) -> bool:
        """Give the message back to the queue for another consumer."""
        return await _settle(lambda: self._message.nack(requeue=True))


async def _settle(action: Any) -> bool:
    try:
        await action()
    except (AMQPError, aio_pika.exceptions.ChannelInvalidStateError, ConnectionError, RuntimeError) as error:
        logger.warning("could not settle a delivery; the broker will redeliver it: %s", type(error).__name__)
        return False
    return True


def delivery_of(message: AbstractIncomingMessage) -> Delivery:
    """A received message as the ``InboundMessage`` agents read (shared by queue and stream readers)."""
    return Delivery(
        body=message.body,
        message_id=message.message_id,
        routing_key=message.routing_key or "",
        exchange=message.exchange or "",
        headers=dict(message.headers or {}),
        content_type=message.content_type,
        message_type=message.type,
        timestamp=message.timestamp,
        redelivered=bool(message.redelivered),
        reply_to=message.reply_to,
        correlation_id=message.correlation_id,
        _message=message,
    )


class QueueConsumer:
    """Buffers deliveries of one queue on its own channel; at most ``prefetch`` are unacked at a time."""

    def __init__(self, connection: AbstractRobustConnection, queue_name: str, *, prefetch: int) -> None:
        self._connection = connection
        self._queue_name = queue_name
        self._prefetch = prefetch
        self._buffer: asyncio.Queue[Delivery] = asyncio.Queue()
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        # passive: the queue's arguments belong to `payments topology`; a missing queue is an error here.
        self._queue = await self._channel.declare_queue(self._queue_name, passive=True)
        self._consumer_tag = await self._queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await self._buffer.put(delivery_of(message))

    async def next(self, stop: asyncio.Event) -> Delivery | None:
        """The next delivery, or None once ``stop`` is set (whichever comes first)."""
        if stop.is_set():
            return None
        if not self._buffer.empty():
            return self._buffer.get_nowait()
        getter = asyncio.ensure_future(self._buffer.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    async def stop_consuming(self) -> None:
        """Ask the broker for no more deliveries; those already buffered go back to the queue."""
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(AMQPError, aio_pika.exceptions.ChannelInvalidStateError, RuntimeError):
                await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
        while not self._buffer.empty():
            await self._buffer.get_nowait().requeue()

    async def close(self) -> None:
        await self.stop_consuming()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(AMQPError, aio_pika.exceptions.ChannelInvalidStateError, RuntimeError):
                await self._channel.close()

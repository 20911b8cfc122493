"""Admin alerts as they are published, for the web process's live stream (``web/admin_alerts.py``).

Each web process declares one queue of its own, exclusive and auto-deleted, bound to
``email.exchange`` with ``email.admin.alert``, consumes it once, and fans each alert out in memory to
every open stream (``AlertFanout``). The queue is a live view, not a work queue: messages are taken
without acks, nothing is redelivered, and an alert raised while no one watches is simply not shown
live. The stored ``alerts`` table is the record; a stream that reconnects catches up from it.

Each subscriber has a bounded buffer. One that falls ``buffer`` alerts behind (a stalled client) is
dropped, with a log line, rather than slowing the others down or growing memory without bound: its
iterator ends, its stream closes, and its client reconnects and catches up from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import BROKER_FAILURES
from payments.domain.alerts.model import ADMIN_ALERT_ROUTING_KEY
from payments.pipeline.topology import Exchange

#: Alerts one subscriber may have waiting before it is dropped; alerts are rare, so only a stuck
#: client ever fills it.
DEFAULT_BUFFER: Final = 100
#: The queue's name starts with this (the rest is random), so the broker's queue list says what it is.
QUEUE_PREFIX: Final = "web.admin-alerts"

logger = logging.getLogger(__name__)

#: An alert message as published (``Alert.message()``), parsed from JSON.
Message = Mapping[str, Any]


class AlertSubscription:
    """One subscriber's alerts, in order; iteration ends when the feed closes or drops it."""

    def __init__(self, buffer: int) -> None:
        # One slot more than the buffer, so the end marker always fits.
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=buffer + 1)
        self._buffer = buffer
        self._ended = False

    def __aiter__(self) -> AlertSubscription:
        return self

    async def __anext__(self) -> Message:
        item = await self._queue.get()
        if item is None:
            self._queue.put_nowait(None)  # stays ended for any later read
            raise StopAsyncIteration
        return item

    def offer(self, message: Message) -> bool:
        """Queue ``message``; False (and nothing queued) if this subscriber is full or ended."""
        if self._ended or self._queue.qsize() >= self._buffer:
            return False
        self._queue.put_nowait(message)
        return True

    def end(self) -> None:
        """End the iteration once what is queued has been read."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(None)


class AlertFanout:
    """Hands each alert to every subscriber, in memory; the broker-free half of ``RabbitAlertFeed``."""

    def __init__(self, *, buffer: int = DEFAULT_BUFFER) -> None:
        if buffer < 1:
            raise ValueError("a subscriber's buffer must hold at least one alert")
        self._buffer = buffer
        self._subscribers: set[AlertSubscription] = set()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Message]]:
        """Alerts published from now on, until the block exits, the feed closes or drops this one."""
        subscription = AlertSubscription(self._buffer)
        if self._closed:
            subscription.end()
        else:
            self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            self._subscribers.discard(subscription)

    def publish(self, message: Message) -> None:
        """Give ``message`` to every subscriber; drop any that has ``buffer`` alerts still unread."""
        for subscription in list(self._subscribers):
            if not subscription.offer(message):
                logger.warning(
                    "dropping a live admin-alert subscriber %d alerts behind; it will reconnect and catch up",
                    self._buffer,
                )
                self._subscribers.discard(subscription)
                subscription.end()

    def close(self) -> None:
        """End every subscription; later ones end at once."""
        self._closed = True
        for subscription in self._subscribers:
            subscription.end()
        self._subscribers.clear()


class RabbitAlertFeed:
    """``email.admin.alert`` messages from RabbitMQ, fanned out to this process's live alert streams.

    ``start()`` once before serving (subscribing works before it too, and sees alerts from then on);
    ``close()`` ends every stream and deletes the queue.
    """

    def __init__(self, connection: AbstractRobustConnection, *, buffer: int = DEFAULT_BUFFER) -> None:
        self._connection = connection
        self._fanout = AlertFanout(buffer=buffer)
        self._channel: AbstractChannel | None = None
        #: Named here rather than by the broker: the robust connection declares the queue again under
        #: the same name after a reconnect (aio-pika names a nameless robust queue itself for that).
        self.queue_name = f"{QUEUE_PREFIX}.{uuid.uuid4().hex[:16]}"

    @property
    def subscribers(self) -> int:
        return self._fanout.subscribers

    async def start(self) -> None:
        channel = await self._connection.channel()
        queue = await channel.declare_queue(self.queue_name, exclusive=True, auto_delete=True)
        await queue.bind(Exchange.EMAIL.value, ADMIN_ALERT_ROUTING_KEY)
        await queue.consume(self._on_message, no_ack=True)
        self._channel = channel

    async def close(self) -> None:
        self._fanout.close()
        if self._channel is not None and not self._channel.is_closed:
            # Closing the channel cancels the consumer; exclusive + auto-delete then removes the queue.
            with contextlib.suppress(*BROKER_FAILURES):
                await self._channel.close()

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Alerts published from now on (see ``AlertFanout.subscribe``)."""
        return self._fanout.subscribe()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        body = parse_alert(message.body)
        if body is None:
            logger.warning("ignoring an %s message that is not an alert", ADMIN_ALERT_ROUTING_KEY)
            return
        self._fanout.publish(body)


def parse_alert(body: bytes) -> Message | None:
    """The alert message in ``body``, or None if it is not a JSON object with a string ``alertId``."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict) or not isinstance(decoded.get("alertId"), str):
        return None
    return decoded

"""Request/reply over RabbitMQ for API commands (DESIGN §3 ``command.exchange``).

The client publishes each command persistently, with a broker confirm, and ``reply_to`` set to
RabbitMQ's direct reply-to pseudo-queue, then waits for the reply that carries its correlation id.
Direct reply-to needs no queue per request and no clean-up; it requires the consumer and the
publisher to share one channel, which is why the client owns its own. A reply that arrives after its
caller gave up is dropped; the command itself still ran (the caller answered 202).

Agents answer with ``RpcReplier``: a best-effort, non-mandatory publish to the default exchange, since
a requester that went away must not make the agent fail a command it has completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Mapping
from typing import Final

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from payments.bridges.rabbitmq.connection import BROKER_FAILURES
from payments.bridges.rabbitmq.publisher import HeaderValue, RabbitPublisher

logger = logging.getLogger(__name__)

#: RabbitMQ's pseudo-queue for direct replies.
DIRECT_REPLY_TO: Final = "amq.rabbitmq.reply-to"


class RpcClient:
    """Sends commands and awaits their replies; one per process, started once."""

    def __init__(self, connection: AbstractRobustConnection, *, publish_timeout: float) -> None:
        self._connection = connection
        self._publish_timeout = publish_timeout
        self._pending: dict[str, asyncio.Future[bytes]] = {}
        self._channel: AbstractChannel | None = None
        self._publisher: RabbitPublisher | None = None

    async def start(self) -> None:
        channel = await self._connection.channel(publisher_confirms=True)
        await self._subscribe(channel)
        # The robust channel comes back after a broker restart, but the direct reply-to consumer does
        # not (it is not a declared queue): without it every request is refused with PRECONDITION_FAILED.
        channel.reopen_callbacks.add(self._resubscribe)
        self._channel = channel
        self._publisher = RabbitPublisher(channel, timeout=self._publish_timeout)

    async def _resubscribe(self, reopened: AbstractRobustChannel | None) -> None:
        channel = reopened or self._channel
        if channel is not None:
            await self._subscribe(channel)

    async def _subscribe(self, channel: AbstractChannel) -> None:
        replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
        await replies.consume(self._on_reply, no_ack=True)

    async def close(self) -> None:
        for future in self._pending.values():
            future.cancel()
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(*BROKER_FAILURES):
                await self._channel.close()

    async def request(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, HeaderValue] | None = None,
        wait_seconds: float,
    ) -> bytes | None:
        """Publish (confirmed) and wait up to ``wait_seconds`` for the reply body; None if none came.

        Raises ``DependencyUnavailable`` (or ``UnroutableMessage``) when the command was not queued.
        """
        if self._publisher is None:
            raise RuntimeError("RpcClient.start() was not awaited")
        correlation_id = uuid.uuid4().hex
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._publisher.publish(
                exchange=exchange,
                routing_key=routing_key,
                body=body,
                message_id=message_id,
                headers=headers,
                message_type=routing_key,
                reply_to=DIRECT_REPLY_TO,
                correlation_id=correlation_id,
            )
            return await asyncio.wait_for(future, timeout=wait_seconds)
        except TimeoutError:
            return None
        finally:
            self._pending.pop(correlation_id, None)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._pending.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(message.body)


class RpcReplier:
    """Answers a request on the channel it was given (no confirm, no mandatory: best effort)."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel

    async def reply(self, *, reply_to: str, correlation_id: str, body: bytes) -> None:
        message = aio_pika.Message(body, content_type="application/json", correlation_id=correlation_id)
        try:
            await self._channel.default_exchange.publish(message, routing_key=reply_to, mandatory=False)
        except BROKER_FAILURES as error:
            logger.warning("could not send a command reply: %s", type(error).__name__)

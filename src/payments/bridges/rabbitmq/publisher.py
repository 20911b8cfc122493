"""Publishing with publisher confirms: ``publish`` returns only once the broker has taken the message.

Used by the outbox relay (DESIGN §5.2) and by the runtime to move a failed message to a retry tier or a
DLQ (default exchange, routing key = queue name). Every failure comes back as a ``Retry``-family error,
so the caller keeps the message (the outbox row stays unpublished) and tries again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import TypeAlias

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import ChannelNotFoundEntity, DeliveryError, PublishError
from pamqp.common import FieldTable

from payments.bridges.rabbitmq.connection import BROKER_FAILURES
from payments.bridges.rabbitmq.topology import DEFAULT_EXCHANGE
from payments.domain.errors import DependencyUnavailable

#: Header values we put on messages; AMQP field tables carry these types as they are.
HeaderValue: TypeAlias = str | int | float | bool | None


class UnroutableMessage(DependencyUnavailable):
    """The broker could not route the message to any queue."""

    # A Retry, not a Reject: our messages only go unrouted when the topology they rely on is missing
    # (a queue or binding not declared yet), and running `payments topology` fixes that, after which
    # the same message publishes fine. Dead-lettering it would lose an event that is not poison.
    code = "unroutable_message"


class RabbitPublisher:
    """Publishes persistent, mandatory messages and waits for the broker's confirm.

    ``channel`` must be opened with publisher confirms (``connection.channel(publisher_confirms=True)``);
    ``timeout`` bounds each publish, including the wait while a robust connection is reconnecting.
    """

    def __init__(self, channel: AbstractChannel, *, timeout: float) -> None:
        if not channel.publisher_confirms:
            # Without confirms "published" would only mean "written to a socket", which the outbox
            # relay would then mark as sent: a crash could lose the event.
            raise ValueError("RabbitPublisher needs a channel opened with publisher_confirms=True")
        self._channel = channel
        self._timeout = timeout
        self._exchanges: dict[str, AbstractExchange] = {}

    async def publish(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, HeaderValue] | None = None,
        content_type: str = "application/json",
        message_type: str | None = None,
        timestamp: datetime | None = None,
        expiration_seconds: float | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish one message and wait for the broker to confirm it.

        ``exchange=""`` sends straight to the queue named ``routing_key``. ``expiration_seconds`` sets the
        AMQP per-message expiration (a retry-tier wait shorter than the queue's TTL). ``reply_to`` and
        ``correlation_id`` make it a request (``RpcClient``).

        Raises ``UnroutableMessage`` when no queue is bound for it (or the exchange does not exist), and
        ``DependencyUnavailable`` on a nack, a timeout or a closed channel or connection.
        """
        message = _message(
            body=body,
            message_id=message_id,
            headers=headers,
            content_type=content_type,
            message_type=message_type,
            timestamp=timestamp,
            expiration_seconds=expiration_seconds,
            reply_to=reply_to,
            correlation_id=correlation_id,
        )
        where = f"exchange {exchange!r} with routing key {routing_key!r}"
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._exchange(exchange)
                result = await target.publish(message, routing_key, mandatory=True)
        except PublishError:
            raise UnroutableMessage(f"no queue is bound for {where}") from None
        except ChannelNotFoundEntity:
            raise UnroutableMessage(f"cannot publish to {where}: the exchange does not exist") from None
        except DeliveryError:
            raise DependencyUnavailable(f"RabbitMQ refused (nacked) a message to {where}") from None
        except TimeoutError:
            raise DependencyUnavailable(
                f"RabbitMQ did not confirm a message to {where} within {self._timeout} s"
            ) from None
        except BROKER_FAILURES as error:
            raise DependencyUnavailable(
                f"cannot publish to {where}: {type(error).__name__} (channel or connection closed)"
            ) from None
        if isinstance(result, DeliveredMessage):
            # A channel opened with on_return_raises=False (aio-pika's default) hands the returned
            # message back instead of raising PublishError.
            raise UnroutableMessage(f"no queue is bound for {where}")

    async def _exchange(self, name: str) -> AbstractExchange:
        # ensure=False: the topology is declared by `payments topology`, not by every publish; a
        # missing exchange surfaces as ChannelNotFoundEntity on the publish itself.
        if name == DEFAULT_EXCHANGE:
            return self._channel.default_exchange
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]


def _message(
    *,
    body: bytes,
    message_id: str,
    headers: Mapping[str, HeaderValue] | None,
    content_type: str,
    message_type: str | None,
    timestamp: datetime | None,
    expiration_seconds: float | None,
    reply_to: str | None = None,
    correlation_id: str | None = None,
) -> aio_pika.Message:
    if timestamp is not None and timestamp.tzinfo is None:
        # pamqp reads a naive datetime as local time, which would shift every event by the UTC offset.
        raise ValueError("timestamp must be timezone-aware")
    if expiration_seconds is not None and expiration_seconds < 0:
        raise ValueError("expiration_seconds must not be negative")
    field_table: FieldTable = dict(headers or {})
    return aio_pika.Message(
        body,
        headers=field_table,
        content_type=content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
        type=message_type,
        timestamp=timestamp,
        expiration=expiration_seconds,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )

"""Behavioural fakes of the broker side of the runtime: messages, a consumer and a publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payments.domain.errors import DependencyUnavailable


@dataclass
class FakeMessage:
    """An inbound message that remembers how it was settled (exactly once, like AMQP)."""

    body: bytes
    message_id: str | None = "msg-1"
    routing_key: str = "test.key"
    headers: Mapping[str, Any] = field(default_factory=dict)
    timestamp: datetime | None = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    content_type: str | None = "application/json"
    message_type: str | None = None
    redelivered: bool = False
    reply_to: str | None = None
    correlation_id: str | None = None
    settled: str | None = None

    async def ack(self) -> bool:
        return self._settle("acked")

    async def requeue(self) -> bool:
        return self._settle("requeued")

    def _settle(self, how: str) -> bool:
        if self.settled is not None:
            raise AssertionError(f"message {self.message_id} settled twice ({self.settled}, then {how})")
        self.settled = how
        return True


class FakeConsumer:
    """A queue of messages; ``next`` waits for one or for ``stop``, like the real consumer."""

    def __init__(self, *messages: FakeMessage) -> None:
        self.queue: asyncio.Queue[FakeMessage] = asyncio.Queue()
        for message in messages:
            self.queue.put_nowait(message)
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def next(self, stop: asyncio.Event) -> FakeMessage | None:
        if stop.is_set():
            return None
        getter = asyncio.ensure_future(self.queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        return None


@dataclass
class Published:
    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    headers: dict[str, Any]
    message_type: str | None
    expiration_seconds: float | None


class RecordingPublisher:
    """Records every publish; ``fail_next`` makes the next N publishes raise like a broker outage."""

    def __init__(self) -> None:
        self.published: list[Published] = []
        self.fail_next = 0
        self.published_event = asyncio.Event()

    async def publish(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
        message_type: str | None = None,
        timestamp: datetime | None = None,
        expiration_seconds: float | None = None,
    ) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("broker down (fake)")
        self.published.append(
            Published(
                exchange, routing_key, body, message_id, dict(headers or {}), message_type, expiration_seconds
            )
        )
        self.published_event.set()

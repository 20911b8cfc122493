"""What the runtime and the outbox relay need from a message broker (``RabbitPublisher`` is the real one)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Final, Protocol

from payments.pipeline.tracing import current_trace

HeaderValue = str | int | float | bool | None

#: Header with the wall-clock time (Unix seconds, fractional) a message was first published. The AMQP
#: ``timestamp`` property holds whole seconds of event time; this one times the wait in the broker.
PUBLISHED_AT_HEADER: Final = "x-published-at"


class Publisher(Protocol):
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
    ) -> None:
        """Publish a persistent message and return once the broker confirmed it.

        Raises ``DependencyUnavailable`` when the broker is unreachable or refuses the message.
        """
        ...


class TracedPublisher:
    """Adds the current trace's ids, and the time of publication, to every message lacking them.

    Messages published from a request or an agent then continue that trace in their consumer, and the
    consumer can tell how long each waited (``payments_agent_lag_seconds``). A message that already has
    these headers (a retried message keeps its original trace and first publication) is left as is.
    """

    def __init__(self, inner: Publisher) -> None:
        self._inner = inner

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
    ) -> None:
        merged: dict[str, HeaderValue] = dict(headers or {})
        trace = current_trace()
        if trace is not None:
            for name, value in trace.to_message_headers().items():
                merged.setdefault(name, value)
        merged.setdefault(PUBLISHED_AT_HEADER, time.time())
        await self._inner.publish(
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            message_id=message_id,
            headers=merged,
            content_type=content_type,
            message_type=message_type,
            timestamp=timestamp,
            expiration_seconds=expiration_seconds,
        )

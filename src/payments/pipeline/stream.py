"""The typed stream an agent iterates.

``async for event in stream`` hands the agent one validated ``Event`` at a time. The message behind an
event is acknowledged only when the loop comes back for the next one, i.e. after the agent's body
(and the transaction it committed) finished with it. A body that raises leaves its message unsettled
for the supervisor, which routes it to a retry tier or the dead-letter queue. A message that does not
validate never reaches the agent: it goes to the dead-letter queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from payments.domain.errors import InvalidPayload, Reject
from payments.pipeline.metrics import Metrics
from payments.pipeline.publishing import PUBLISHED_AT_HEADER
from payments.pipeline.tracing import TraceContext, activate_trace

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Header carrying how many times handling this message has failed so far.
FAILURES_HEADER = "x-retry-count"


class InboundMessage(Protocol):
    """A broker delivery as the runtime sees it (``bridges.rabbitmq.consumer.Delivery``)."""

    @property
    def body(self) -> bytes: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, Any]: ...
    @property
    def timestamp(self) -> datetime | None: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def message_type(self) -> str | None: ...
    @property
    def redelivered(self) -> bool: ...
    @property
    def reply_to(self) -> str | None: ...
    @property
    def correlation_id(self) -> str | None: ...
    async def ack(self) -> bool: ...
    async def requeue(self) -> bool: ...


class MessageSource(Protocol):
    async def next(self, stop: asyncio.Event) -> InboundMessage | None:
        """The next message, or None once ``stop`` is set."""
        ...


@dataclass(frozen=True)
class Event(Generic[T]):
    """One message, validated, with the ids an agent needs for idempotency and tracing."""

    value: T
    #: The message id; consumers record it in the inbox so redelivery has no second effect.
    event_id: str
    routing_key: str
    occurred_at: datetime | None
    headers: Mapping[str, Any]
    trace: TraceContext
    #: How many earlier attempts failed (0 on the first delivery).
    failures: int
    redelivered: bool
    #: Set when the sender awaits an answer (API commands): see ``AgentContext.replies``.
    reply_to: str | None = None
    correlation_id: str | None = None


InvalidMessageHandler = Callable[[InboundMessage, Reject], Awaitable[object]]


class Stream(Generic[T]):
    """An agent's view of its queue; see the module docstring for when messages are acknowledged."""

    def __init__(
        self,
        source: MessageSource,
        value_type: type[T] | TypeAdapter[T],
        *,
        agent: str,
        metrics: Metrics,
        stop: asyncio.Event,
        on_invalid: InvalidMessageHandler,
    ) -> None:
        self._agent = agent
        # This agent's series, looked up once: ``labels()`` takes a lock and a dict look-up each call.
        self._in_flight = metrics.agent_in_flight.labels(agent)
        self._handled = metrics.agent_messages.labels(agent, "ok")
        self._duration = metrics.agent_duration.labels(agent)
        self._lag = metrics.agent_lag.labels(agent)
        self._source = source
        self._adapter: TypeAdapter[T] = (
            value_type if isinstance(value_type, TypeAdapter) else TypeAdapter(value_type)
        )
        self._raw = value_type is bytes
        self._stop = stop
        self._on_invalid = on_invalid
        self._current: InboundMessage | None = None
        self._started_at: float | None = None

    @property
    def current(self) -> InboundMessage | None:
        """The message the agent is working on, if any."""
        return self._current

    @property
    def started_at(self) -> float | None:
        """Loop time at which the current message was handed out."""
        return self._started_at

    def release_current(self) -> InboundMessage | None:
        """Take the current message away from the stream (the supervisor settles it instead)."""
        message, self._current, self._started_at = self._current, None, None
        if message is not None:
            self._in_flight.dec()
        return message

    def __aiter__(self) -> Stream[T]:
        return self

    async def __anext__(self) -> Event[T]:
        await self.finish_current()
        while True:
            message = await self._source.next(self._stop)
            if message is None:
                raise StopAsyncIteration
            try:
                event = self._decode(message)
            except Reject as error:
                await self._on_invalid(message, error)
                continue
            self._current = message
            self._started_at = asyncio.get_running_loop().time()
            self._in_flight.inc()
            # The agent's task now runs under this message's trace: its logs and outbox events carry it.
            activate_trace(event.trace)
            self._observe_lag(event)
            logger.debug("%s took %s %s", self._agent, event.routing_key, event.event_id)
            return event

    async def finish_current(self) -> None:
        """Acknowledge the message the agent has finished with."""
        started_at = self._started_at
        message = self.release_current()
        if message is None or started_at is None:
            return
        await message.ack()
        self._handled.inc()
        elapsed = asyncio.get_running_loop().time() - started_at
        self._duration.observe(elapsed)
        logger.debug("%s finished %s in %.3f s", self._agent, message.message_id, elapsed)

    def _observe_lag(self, event: Event[T]) -> None:
        """Time from first publication to now; a retried message's wait in its tier is not lag."""
        published_at = _published_at(event.headers)
        if event.failures == 0 and published_at is not None:
            lag = max(0.0, time.time() - published_at)
            self._lag.observe(lag)

    def _decode(self, message: InboundMessage) -> Event[T]:
        if not message.message_id:
            raise InvalidPayload("message has no message_id", reason="missing_message_id")
        return Event(
            value=self._validate(message.body),
            event_id=message.message_id,
            routing_key=message.routing_key,
            occurred_at=message.timestamp,
            headers=message.headers,
            trace=TraceContext.from_message_headers(message.headers),
            failures=failures_so_far(message.headers),
            redelivered=message.redelivered,
            reply_to=message.reply_to,
            correlation_id=message.correlation_id,
        )

    def _validate(self, body: bytes) -> T:
        if self._raw:
            return body  # type: ignore[return-value]
        try:
            return self._adapter.validate_json(body)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
                for item in error.errors(include_input=False, include_url=False)[:5]
            )
            raise InvalidPayload(f"message does not validate: {problems}", reason="invalid_payload") from None


def _published_at(headers: Mapping[str, Any]) -> float | None:
    value = headers.get(PUBLISHED_AT_HEADER)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def failures_so_far(headers: Mapping[str, Any]) -> int:
    """The failure count our runtime stamped on a retried message (0 when absent or garbled)."""
    value = headers.get(FAILURES_HEADER, 0)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0

"""Reading the event log (``events.log``, a RabbitMQ stream) from a time or an offset, for replay.

A stream is read by an ordinary AMQP consumer whose ``x-stream-offset`` argument says where to attach:
a numeric offset, or a timestamp (the broker attaches at the chunk written at that time, so entries
from a little earlier come too). Reading removes nothing, and the broker keeps no reader's position.
A stream consumer must set a prefetch and really acknowledge each delivery: the acks are the credit
that lets the broker send more.

Why a read always ends, and soon:

- **At the end of the log as it was when the read began.** A stream never runs dry (a consumer at
  its end just waits), and the queue's message count comes from the broker's periodic statistics (it
  reads 0 right after a burst of publishes), so neither idling nor the count tells reliably where the
  end is. Instead the reader appends a small *end mark* to the stream itself (default exchange,
  publisher-confirmed), seen by a probe consumer attached at "next" just before, which gives its
  offset. The read stops on reaching that offset: at once on a quiet stream, and on a busy one
  without chasing new traffic. End marks are never handed out (ours or another reader's); each read
  adds one tiny entry to the log, which the log's retention removes like any other.
- **Past ``end``.** Timestamps are event times set by the publisher, and the outbox relay can publish
  an event a little after it happened, so the log is only roughly in timestamp order: the read stops
  at the first entry stamped more than ``end_grace`` past ``end`` (the caller drops entries past
  ``end`` itself).
- **Never silently short.** If nothing arrives for ``idle_timeout`` seconds before the end is reached,
  ``EventLogStalled`` is raised, rather than hanging or ending early without saying so.

After a reconnect the robust channel attaches again at the same start; entries at offsets already
handed out are skipped, so the reader carries on where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from typing import Final

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aiormq.exceptions import AMQPError, ChannelNotFoundEntity

from payments.bridges.rabbitmq.consumer import Delivery, delivery_of
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import DEFAULT_EXCHANGE
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.topology import EVENT_LOG_STREAM

#: The consume argument that positions a stream consumer, and the header giving each entry's offset.
STREAM_OFFSET: Final = "x-stream-offset"
#: AMQP ``type`` of the end marks readers append (never handed out as entries).
END_MARK_TYPE: Final = "payments.event_log.end_mark"
#: Unacknowledged entries in flight; the broker reads a stream in chunks, so this is generous.
DEFAULT_PREFETCH: Final = 500
#: How long after ``end`` an event may still be published (an outbox relay catching up).
DEFAULT_END_GRACE: Final = timedelta(minutes=5)
#: Attach this much before a start time: the broker stamps chunks with its clock, publishers with theirs.
START_SLACK: Final = timedelta(minutes=1)
#: Silence before the end mark that means the broker stopped delivering.
DEFAULT_IDLE_TIMEOUT: Final = 30.0


class EventLogMissing(DependencyUnavailable):
    """The event log stream does not exist (run ``payments topology``)."""

    code = "event_log_missing"


class EventLogStalled(DependencyUnavailable):
    """The event log stopped delivering before the end of the read."""

    code = "event_log_stalled"


class EventLogReader:
    """Reads stretches of the event log; see the module docstring for where each read ends."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        *,
        stream: str = EVENT_LOG_STREAM,
        prefetch: int = DEFAULT_PREFETCH,
        publish_timeout: float = 5.0,
        end_grace: timedelta = DEFAULT_END_GRACE,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._prefetch = prefetch
        self._publish_timeout = publish_timeout
        self._end_grace = end_grace
        self._idle_timeout = idle_timeout

    async def read(
        self, *, start: datetime | int, end: datetime | None = None
    ) -> AsyncGenerator[Delivery, None]:
        """Entries from ``start`` (an aware time, or an offset) in log order; the caller acks each one."""
        position = attach_position(start)
        channel = await self._connection.channel()
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            stream = await self._open_stream(channel)
            last = await self._mark_end()
            if isinstance(start, int) and start >= last:
                return
            arrivals = _Arrivals(self._idle_timeout, self._stream)
            await stream.consume(arrivals.put, arguments={STREAM_OFFSET: position})
            handed_out = start - 1 if isinstance(start, int) else -1
            while True:
                message = await arrivals.get()
                offset = _offset(message)
                if offset >= last:
                    return
                entry = delivery_of(message)
                if offset <= handed_out or message.type == END_MARK_TYPE:
                    await entry.ack()  # a repeat after a reconnect, or a mark: credit only
                    continue
                if self._past_end(message, end):
                    return
                handed_out = offset
                yield entry
        finally:
            await _close(channel)

    async def _open_stream(self, channel: AbstractChannel) -> AbstractQueue:
        try:
            return await channel.get_queue(self._stream, ensure=True)
        except ChannelNotFoundEntity:
            raise EventLogMissing(
                f"the event log {self._stream!r} does not exist; run `payments topology`"
            ) from None

    async def _mark_end(self) -> int:
        """Append an end mark; its offset. Everything before it is what the log held at this moment."""
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            probe = await channel.get_queue(self._stream, ensure=False)
            arrivals = _Arrivals(self._idle_timeout, self._stream)
            # Attached before the mark is published, "next" is sure to see the mark.
            await probe.consume(arrivals.put, arguments={STREAM_OFFSET: "next"})
            mark_id = f"end-mark.{uuid.uuid4().hex}"
            await RabbitPublisher(channel, timeout=self._publish_timeout).publish(
                exchange=DEFAULT_EXCHANGE,
                routing_key=self._stream,
                body=b"",
                message_id=mark_id,
                content_type="application/octet-stream",
                message_type=END_MARK_TYPE,
                timestamp=datetime.now(UTC),
            )
            while (message := await arrivals.get()).message_id != mark_id:
                await message.ack()
            return _offset(message)
        finally:
            await _close(channel)

    def _past_end(self, message: AbstractIncomingMessage, end: datetime | None) -> bool:
        return end is not None and message.timestamp is not None and message.timestamp > end + self._end_grace


def attach_position(start: datetime | int) -> datetime | int:
    """The ``x-stream-offset`` to attach at for ``start``: an offset as is, a time a little earlier."""
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise ValueError("a start time must be timezone-aware")
        return start - START_SLACK
    if start < 0:
        raise ValueError("a log offset cannot be negative")
    return start


class _Arrivals:
    """Deliveries of one consumer, taken one at a time with a bound on the silence."""

    def __init__(self, idle_timeout: float, stream: str) -> None:
        self._queue: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._idle_timeout = idle_timeout
        self._stream = stream

    async def put(self, message: AbstractIncomingMessage) -> None:
        await self._queue.put(message)

    async def get(self) -> AbstractIncomingMessage:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout=self._idle_timeout)
        except TimeoutError:
            raise EventLogStalled(
                f"{self._stream!r} sent nothing for {self._idle_timeout:.0f} s before the end of the read"
            ) from None


def _offset(message: AbstractIncomingMessage) -> int:
    offset = (message.headers or {}).get(STREAM_OFFSET)
    if not isinstance(offset, int):
        raise DependencyUnavailable(
            f"a delivery from the event log carries no {STREAM_OFFSET} (not a stream?)"
        )
    return offset


async def _close(channel: AbstractChannel) -> None:
    # Unacked stream deliveries need no settling: reading removed nothing.
    if not channel.is_closed:
        with contextlib.suppress(AMQPError, aio_pika.exceptions.ChannelInvalidStateError, RuntimeError):
            await channel.close()

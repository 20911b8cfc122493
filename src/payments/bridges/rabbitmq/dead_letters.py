"""``DeadLetters`` on RabbitMQ: browse and re-drive the quorum DLQs with ``basic.get``.

Every operation runs on a channel of its own, opened for it and closed after it. It first takes the
whole DLQ (up to ``MAX_SCAN`` messages) unacknowledged, then works on what it holds: a browse reads
the first ``limit``, a re-drive moves its messages. Everything not moved is handed back by closing
the channel, not by rejecting messages one by one. Both halves matter on a quorum queue (RabbitMQ 3.x,
checked by the integration tests):

- a message rejected with requeue goes to the *tail* of the queue, while the messages of a closed
  channel go back ahead of the rest, in the order they were delivered;
- messages handed back wait in a "returns" list that is served first; an operation that takes fewer
  than that list holds would put what it took *behind* the rest of the list. Taking everything each
  time keeps the order, at the cost of reading the whole DLQ to show a page of it.

Handing back is asynchronous: the broker answers the channel's close before the queue has taken
the messages back, so a count or a ``basic.get`` right after it can miss them. Each operation therefore
ends by waiting (briefly, bounded) until the DLQ's ready count shows what it handed back; the next
operation then starts from a settled queue.

So a browse changes nothing but each message's ``x-delivery-count``, and a process that dies mid-way
leaves the DLQ as it was (the broker closes the channel for us). A DLQ declares no delivery limit, so
those growing counts are harmless on RabbitMQ 3.x. RabbitMQ 4 gives every quorum queue a default limit
of 20 and drops a message past it when there is no dead-letter exchange: before that upgrade the DLQs
need ``x-delivery-limit: -1`` (a policy will do), or these counts must be shown not to grow.

Re-drive publishes each message to its work queue through the default exchange with a publisher
confirm, and acknowledges it off the DLQ only after the confirm. If the acknowledgement is then lost,
the message exists twice; consumers record message ids in their inbox, so the copy has no effect.
Within a process one operation per queue runs at a time; operations from different processes can
interleave, and then one may not see the messages the other holds at that moment.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Final

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity

from payments.bridges.rabbitmq.connection import BROKER_FAILURES
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import DEFAULT_EXCHANGE
from payments.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    RedriveInterrupted,
    UnknownDeadLetterQueue,
    read_dead_letter,
    redrive_headers,
)
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.topology import QueueSpec

logger = logging.getLogger(__name__)

#: Messages one operation takes at most: the bound on what it holds in memory, and on how far into a
#: DLQ a browse or a re-drive by id can see. Every operation taking the same bound keeps the order.
MAX_SCAN: Final = 10_000
#: First and longest pause between looks at a DLQ while handed-back messages return to it.
_SETTLE_FIRST_PAUSE: Final = 0.005
_SETTLE_LONGEST_PAUSE: Final = 0.1


class _Session:
    """One operation's channel, the DLQ on it, its depth when the operation began, and what it moved."""

    def __init__(
        self, spec: QueueSpec, dead_letter_queue: AbstractQueue, publisher: RabbitPublisher, timeout: float
    ) -> None:
        self.spec = spec
        self.depth = dead_letter_queue.declaration_result.message_count or 0
        self.held = 0
        self.moved = 0
        self._queue = dead_letter_queue
        self._publisher = publisher
        self._timeout = timeout

    async def take(self, at_most: int) -> list[AbstractIncomingMessage]:
        """Up to ``at_most`` messages from the head, unacknowledged until moved or the channel closes."""
        taken: list[AbstractIncomingMessage] = []
        while len(taken) < at_most:
            async with asyncio.timeout(self._timeout):
                message = await self._queue.get(no_ack=False, fail=False)
            if message is None:
                break
            taken.append(message)
        self.held += len(taken)
        return taken

    async def take_all(self) -> list[AbstractIncomingMessage]:
        """Every message there was at the start, up to ``MAX_SCAN`` (see the module docstring)."""
        return await self.take(min(self.depth, MAX_SCAN))

    async def move(self, message: AbstractIncomingMessage, *, moved_before: int) -> None:
        """Publish ``message`` to its work queue (confirmed), then acknowledge it off the DLQ.

        ``moved_before`` is what the whole re-drive moved so far, for ``RedriveInterrupted``.
        """
        where = self.spec.dead_letter_queue
        try:
            await self._publisher.publish(
                exchange=DEFAULT_EXCHANGE,
                routing_key=self.spec.name,
                body=message.body,
                message_id=message.message_id or "",
                headers=redrive_headers(message.headers or {}, now=datetime.now(UTC)),
                content_type=message.content_type or "application/octet-stream",
                message_type=message.type,
                timestamp=_aware(message.timestamp),
            )
        except DependencyUnavailable as error:
            raise RedriveInterrupted(
                f"re-drive of {where} stopped after {moved_before}: {error.message}", moved=moved_before
            ) from None
        try:
            await message.ack()
        except BROKER_FAILURES as error:
            # Published, not removed: it is in the work queue and, once the channel is gone, in the DLQ.
            raise RedriveInterrupted(
                f"message {message.message_id!r} was re-driven but stays in {where} too "
                f"({type(error).__name__}); its consumer will skip the copy",
                moved=moved_before + 1,
            ) from None
        self.moved += 1
        logger.debug("re-drove message %s to %s", message.message_id, self.spec.name)


class RabbitDeadLetters:
    """The DLQs of ``queues`` (only those: any other name is ``UnknownDeadLetterQueue``)."""

    def __init__(
        self, connection: AbstractConnection, *, queues: Sequence[QueueSpec], publish_timeout: float
    ) -> None:
        self._connection = connection
        self._specs = {spec.name: spec for spec in queues}
        #: Bounds every broker round trip (a publish's confirm, a get, opening a channel) and the wait
        #: for handed-back messages to show again.
        self._timeout = publish_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    def queues(self) -> tuple[str, ...]:
        return tuple(self._specs)

    async def count(self, queue: str) -> int:
        spec = self._spec(queue)
        async with self._lock(queue), self._session(spec) as session:
            return session.depth

    async def list(self, queue: str, *, limit: int) -> builtins.list[DeadLetter]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        spec = self._spec(queue)
        async with self._lock(queue), self._session(spec) as session:
            taken = await session.take_all()
            return [_read(spec, message) for message in taken[:limit]]

    async def redrive(self, queue: str, *, message_id: str | None) -> int:
        spec = self._spec(queue)
        async with self._lock(queue):
            if message_id is None:
                return await self._redrive_all(spec)
            async with self._session(spec) as session:
                return await _redrive_one(session, message_id)

    async def _redrive_all(self, spec: QueueSpec) -> int:
        moved, remaining = 0, None
        # Sessions of at most MAX_SCAN, for as many messages as were there at the start: a message that
        # fails again and comes back waits for the next re-drive instead of going round for ever.
        while remaining is None or remaining > 0:
            async with self._session(spec) as session:
                remaining = session.depth if remaining is None else remaining
                held = await session.take(min(remaining, MAX_SCAN))
                for message in held:
                    await session.move(message, moved_before=moved)
                    moved += 1
            if not held:
                break
            remaining -= len(held)
        return moved

    def _spec(self, queue: str) -> QueueSpec:
        try:
            return self._specs[queue]
        except KeyError:
            raise UnknownDeadLetterQueue(f"there is no dead-letter queue for {queue!r}") from None

    def _lock(self, queue: str) -> asyncio.Lock:
        return self._locks.setdefault(queue, asyncio.Lock())

    @asynccontextmanager
    async def _session(self, spec: QueueSpec) -> AsyncIterator[_Session]:
        channel: AbstractChannel | None = None
        session: _Session | None = None
        try:
            async with asyncio.timeout(self._timeout):
                channel = await _open_channel(self._connection)
                dead_letter_queue = await channel.declare_queue(spec.dead_letter_queue, passive=True)
            session = _Session(
                spec, dead_letter_queue, RabbitPublisher(channel, timeout=self._timeout), self._timeout
            )
            yield session
        except ChannelNotFoundEntity:
            raise DependencyUnavailable(
                f"{spec.dead_letter_queue} does not exist (run `payments topology`)"
            ) from None
        except BROKER_FAILURES as error:
            # Only the type: aiormq's texts can carry the broker's address.
            raise DependencyUnavailable(
                f"RabbitMQ failed during an operation on {spec.dead_letter_queue}: {type(error).__name__}"
            ) from None
        finally:
            if channel is not None:
                # Hands every message still held back to the head of the DLQ, in order.
                await _close_quietly(channel)
            if session is not None and session.held > session.moved:
                await self._settle(spec, at_least=session.depth - session.moved)

    async def _settle(self, spec: QueueSpec, *, at_least: int) -> None:
        """Wait until the DLQ shows ``at_least`` ready messages again, or give up after the timeout."""
        pause = _SETTLE_FIRST_PAUSE
        try:
            async with asyncio.timeout(self._timeout):
                channel = await _open_channel(self._connection)
                try:
                    while (await _ready(channel, spec.dead_letter_queue)) < at_least:
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, _SETTLE_LONGEST_PAUSE)
                finally:
                    await _close_quietly(channel)
        except (*BROKER_FAILURES, DependencyUnavailable) as error:
            # The broker returns them all the same; only the next operation might not see them yet.
            logger.warning(
                "messages handed back to %s did not show again in time: %s",
                spec.dead_letter_queue,
                type(error).__name__,
            )


async def _redrive_one(session: _Session, message_id: str) -> int:
    # Every message is taken, even past the match: the others go back in their order (module docstring).
    held = await session.take_all()
    match = next((message for message in held if message.message_id == message_id), None)
    if match is None:
        raise DeadLetterNotFound(
            f"no message {message_id!r} among the first {MAX_SCAN} of {session.spec.dead_letter_queue}"
        )
    await session.move(match, moved_before=0)
    return 1


async def _ready(channel: AbstractChannel, name: str) -> int:
    queue = await channel.declare_queue(name, passive=True)
    return queue.declaration_result.message_count or 0


def _read(spec: QueueSpec, message: AbstractIncomingMessage) -> DeadLetter:
    return read_dead_letter(
        queue=spec.name,
        message_id=message.message_id,
        routing_key=message.routing_key or "",
        message_type=message.type,
        body=message.body,
        headers=message.headers or {},
    )


def _aware(moment: datetime | None) -> datetime | None:
    # AMQP timestamps are seconds since the epoch in UTC; the publisher refuses naive datetimes.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


async def _open_channel(connection: AbstractConnection) -> AbstractChannel:
    if connection.is_closed:
        raise DependencyUnavailable("the RabbitMQ connection is closed")
    # A plain channel, not a robust one: after a reconnect a robust channel would come back without the
    # messages it held, and its delivery tags would no longer settle anything.
    channel = aio_pika.Channel(connection, publisher_confirms=True)
    await channel.initialize()
    return channel


async def _close_quietly(channel: AbstractChannel) -> None:
    with suppress(*BROKER_FAILURES):
        await channel.close()

"""Replaying the event log into agents (``payments replay``): backfill, and rebuilding their tables.

The event log (``events.log``, DESIGN §3) holds every event published on our exchanges, in publish
order. ``replay`` reads the chosen stretch of it once and hands each event to every chosen agent whose
queue would have received it (the binding's exchange, and a routing key its pattern matches), in log
order, through an ordinary ``Stream``: the agent's own code runs unchanged. Each agent runs as one
instance, so it sees events in log order whatever its live concurrency. Events keep their message ids,
so tables (idempotent per event id) and inbox claims make a replay safe to run again, or over a
stretch the live run already handled.

Only agents registered with ``replayable=True`` are fed: an agent that acts on the outside world (the
payment and refund command agents call Cashfree) must never see an old event again.

What differs from the live runtime, on purpose:

- a message an agent fails on stops the whole replay with ``ReplayFailed`` naming the agent and the
  message (no retry tiers, nothing dead-lettered): fix the cause and run the replay again;
- a message that does not validate is counted and skipped, as the live run dead-lettered it unseen;
- replies are never sent: the requests they answered are long gone;
- entries are kept by their timestamp (event time, whole seconds in AMQP) within ``[start, end]``;
  an entry without one is kept, bounded only by where the reader starts and stops in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from payments.domain.errors import Reject
from payments.pipeline.app import App
from payments.pipeline.blueprint import AgentSpec
from payments.pipeline.context import AgentContext
from payments.pipeline.runtime import describe_error
from payments.pipeline.stream import InboundMessage, Stream
from payments.pipeline.topology import Binding

logger = logging.getLogger(__name__)

#: Where a replay starts: a time (the log is positioned by it) or an offset in the log.
ReplayStart = datetime | int

#: Header the broker puts on every entry read from a stream: its offset in the log.
OFFSET_HEADER = "x-stream-offset"


class LogEntry(InboundMessage, Protocol):
    """A message read from the event log; ``ack`` grants the log reader credit for more."""

    @property
    def exchange(self) -> str: ...


class EventLog(Protocol):
    """The replay log (``bridges.rabbitmq.event_log.EventLogReader``)."""

    def read(self, *, start: ReplayStart, end: datetime | None) -> AsyncGenerator[LogEntry, None]:
        """Entries from ``start`` in log order; ends by itself at the end of the log or past ``end``."""
        ...


class NotReplayable(ValueError):
    """An agent chosen for replay may not be replayed: it acts on the outside world."""


class ReplayFailed(Exception):
    """The replay stopped: an agent failed on a message, or the log could not be read."""

    def __init__(
        self, message: str, *, report: ReplayReport, agent: str | None, message_id: str | None
    ) -> None:
        super().__init__(message)
        self.report = report
        self.agent = agent
        self.message_id = message_id


@dataclass(frozen=True)
class ReplayReport:
    """Counts of a replay, so far (progress) or in the end."""

    #: Entries read from the log.
    read: int
    #: Entries read but outside the time range.
    out_of_range: int
    #: Per agent: messages handed to it.
    fed: Mapping[str, int]
    #: Per agent: messages skipped because they do not validate (the live run dead-lettered them).
    invalid: Mapping[str, int]
    elapsed_seconds: float

    @property
    def per_second(self) -> float:
        return self.read / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def describe(self) -> str:
        fed = ", ".join(f"{name} {count}" for name, count in self.fed.items())
        text = (
            f"read {self.read} entries in {self.elapsed_seconds:.1f} s ({self.per_second:.0f}/s, "
            f"{self.out_of_range} out of range); fed {fed}"
        )
        if invalid := {name: count for name, count in self.invalid.items() if count}:
            text += "; skipped as invalid " + ", ".join(f"{name} {count}" for name, count in invalid.items())
        return text


def topic_matches(pattern: str, routing_key: str) -> bool:
    """RabbitMQ topic matching: words split on ".", ``*`` is exactly one word, ``#`` zero or more."""
    return _match(_words(pattern), _words(routing_key))


def _words(key: str) -> tuple[str, ...]:
    return tuple(key.split(".")) if key else ()


def _match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])


def binding_matches(binding: Binding, *, exchange: str, routing_key: str) -> bool:
    """Whether a message published on ``exchange`` with ``routing_key`` reaches a queue so bound."""
    return binding.exchange.value == exchange and topic_matches(binding.routing_key, routing_key)


def replay_selection(app: App, names: Sequence[str] | None) -> list[AgentSpec[Any]]:
    """The agents to feed: those named (blueprints or agents), or else every replayable agent.

    Raises ``UnknownAgent`` for a name nobody registered and ``NotReplayable`` if a chosen agent may not
    be replayed (or nothing replayable is chosen).
    """
    replayable = [spec.name for spec in app.agents if spec.replayable]
    if names is None:
        if not replayable:
            raise NotReplayable("no agent is replayable (agents opt in with replayable=True)")
        return [spec for spec in app.agents if spec.replayable]
    chosen = app.select(names).agents
    if refused := [spec.name for spec in chosen if not spec.replayable]:
        raise NotReplayable(
            f"not replayable: {', '.join(refused)} (they act on the outside world, e.g. call the "
            f"payment gateway); replayable agents: {', '.join(replayable) or 'none'}"
        )
    if not chosen:
        raise NotReplayable(f"{', '.join(names) or 'nothing'} names no agent to replay into")
    return chosen


async def replay(
    app: App,
    context: AgentContext,
    reader: EventLog,
    *,
    agents: Sequence[str] | None,
    start: ReplayStart,
    end: datetime | None,
    progress: Callable[[ReplayReport], object],
    progress_every: int = 1000,
    progress_seconds: float = 5.0,
    buffer: int = 100,
) -> ReplayReport:
    """Feed the log from ``start`` to ``end`` to ``agents`` (None: every replayable agent), once.

    ``progress`` gets a report every ``progress_every`` entries or ``progress_seconds``, whichever
    comes first. Each agent may lag the reader by ``buffer`` messages. Raises ``ReplayFailed`` when an
    agent fails on a message (the other agents finish the message they hold, then stop).
    """
    specs = replay_selection(app, agents)
    window = _Window.of(start, end)
    tally = _Tally(
        started_at=asyncio.get_running_loop().time(), agents=[spec.name for spec in specs], report=progress
    )
    lanes = [_Lane(spec, tally, capacity=buffer) for spec in specs]
    stop = asyncio.Event()
    feeder = asyncio.create_task(
        _feed(reader, lanes, window, tally, every=progress_every, seconds=progress_seconds),
        name="replay-feed",
    )
    tasks = [feeder] + [
        asyncio.create_task(lane.run(context, stop), name=f"replay-{lane.spec.name}") for lane in lanes
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    # Finished, or failed: then the other agents finish the message they hold and take no more.
    stop.set()
    feeder.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    failures = [task.exception() for task in tasks if task in done and not task.cancelled()]
    if problem := next((error for error in failures if error is not None), None):
        raise _failed(problem, tally.snapshot())
    return tally.snapshot()


@dataclass(frozen=True)
class _Window:
    start: ReplayStart
    end: datetime | None

    @classmethod
    def of(cls, start: ReplayStart, end: datetime | None) -> _Window:
        for value in (start, end):
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError("replay times must be timezone-aware")
        if isinstance(start, int) and start < 0:
            raise ValueError("a log offset cannot be negative")
        if isinstance(start, datetime) and end is not None and end < start:
            raise ValueError("the end of a replay comes before its start")
        return cls(start, end)

    def holds(self, at: datetime | None) -> bool:
        if at is None:
            return True
        # AMQP timestamps have whole seconds: an event of the start's second belongs to the range.
        if isinstance(self.start, datetime) and at < self.start.replace(microsecond=0):
            return False
        return self.end is None or at <= self.end


@dataclass
class _Tally:
    """The counters behind ``ReplayReport``, and when to report progress."""

    started_at: float
    agents: list[str]
    report: Callable[[ReplayReport], object]
    read: int = 0
    out_of_range: int = 0
    fed: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    reported_read: int = 0
    reported_at: float = 0.0

    def __post_init__(self) -> None:
        self.fed = dict.fromkeys(self.agents, 0)
        self.invalid = dict.fromkeys(self.agents, 0)
        self.reported_at = self.started_at

    def snapshot(self) -> ReplayReport:
        return ReplayReport(
            read=self.read,
            out_of_range=self.out_of_range,
            fed=dict(self.fed),
            invalid=dict(self.invalid),
            elapsed_seconds=asyncio.get_running_loop().time() - self.started_at,
        )

    def maybe_report(self, *, every: int, seconds: float) -> None:
        now = asyncio.get_running_loop().time()
        if self.read - self.reported_read >= every or now - self.reported_at >= seconds:
            self.reported_read, self.reported_at = self.read, now
            self.report(self.snapshot())


async def _feed(
    reader: EventLog, lanes: list[_Lane], window: _Window, tally: _Tally, *, every: int, seconds: float
) -> None:
    """Read the log once; hand each entry in range to every lane that accepts it, then ack it."""
    async with aclosing(reader.read(start=window.start, end=window.end)) as entries:
        async for entry in entries:
            tally.read += 1
            if window.holds(entry.timestamp):
                for lane in lanes:
                    if lane.accepts(entry):
                        await lane.put(entry)
            else:
                tally.out_of_range += 1
            # A full lane blocks the put above, so acks (the reader's credit) follow the slowest agent.
            await entry.ack()
            tally.maybe_report(every=every, seconds=seconds)
    for lane in lanes:
        await lane.close()


@dataclass(frozen=True, kw_only=True)
class _Replayed:
    """A log entry as one agent's stream sees it; its ack only says the agent is done with it."""

    body: bytes
    message_id: str | None
    routing_key: str
    headers: Mapping[str, Any]
    timestamp: datetime | None
    content_type: str | None
    message_type: str | None
    offset: int | None
    redelivered: bool = False
    # Never answer again: the request an old command carried is long gone.
    reply_to: str | None = None
    correlation_id: str | None = None

    @classmethod
    def of(cls, entry: LogEntry) -> _Replayed:
        offset = entry.headers.get(OFFSET_HEADER)
        return cls(
            body=entry.body,
            message_id=entry.message_id,
            routing_key=entry.routing_key,
            headers=entry.headers,
            timestamp=entry.timestamp,
            content_type=entry.content_type,
            message_type=entry.message_type,
            offset=offset if isinstance(offset, int) else None,
        )

    async def ack(self) -> bool:
        return True

    async def requeue(self) -> bool:
        return False


class _AgentFailed(Exception):
    def __init__(self, agent: str, message: InboundMessage | None, error: BaseException) -> None:
        super().__init__(agent)
        self.agent, self.message, self.error = agent, message, error


class _Lane:
    """One agent's feed: a bounded in-memory queue that its ``Stream`` reads as a ``MessageSource``."""

    def __init__(self, spec: AgentSpec[Any], tally: _Tally, *, capacity: int) -> None:
        self.spec = spec
        self._tally = tally
        self._queue: asyncio.Queue[_Replayed | None] = asyncio.Queue(capacity)
        self._ended = False

    def accepts(self, entry: LogEntry) -> bool:
        return any(
            binding_matches(binding, exchange=entry.exchange, routing_key=entry.routing_key)
            for binding in self.spec.queue.bindings
        )

    async def put(self, entry: LogEntry) -> None:
        await self._queue.put(_Replayed.of(entry))
        self._tally.fed[self.spec.name] += 1

    async def close(self) -> None:
        await self._queue.put(None)

    async def next(self, stop: asyncio.Event) -> InboundMessage | None:
        if stop.is_set() or self._ended:
            return None
        if not self._queue.empty():
            return self._settle(self._queue.get_nowait())
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            getter.cancel()
        if not getter.done() or getter.cancelled():
            return None
        return self._settle(getter.result())

    def _settle(self, item: _Replayed | None) -> _Replayed | None:
        self._ended = item is None
        return item

    async def run(self, context: AgentContext, stop: asyncio.Event) -> None:
        stream: Stream[Any] = Stream(
            self,
            self.spec.value_type,
            agent=self.spec.name,
            metrics=context.metrics,
            stop=stop,
            on_invalid=self._skip_invalid,
        )
        try:
            await self.spec.function(stream, context)
        except Exception as error:
            raise _AgentFailed(self.spec.name, stream.release_current(), error) from error
        await stream.finish_current()
        if not (self._ended or stop.is_set()):
            raise _AgentFailed(self.spec.name, None, RuntimeError("it returned before the log ended"))

    async def _skip_invalid(self, message: InboundMessage, error: Reject) -> None:
        self._tally.invalid[self.spec.name] += 1
        logger.warning(
            "replay: %s skips message %s, as the live run dead-lettered it: %s",
            self.spec.name,
            message.message_id,
            describe_error(error),
        )


def _failed(problem: BaseException, report: ReplayReport) -> ReplayFailed:
    after = f"the replay stopped after reading {report.read} entries; it is idempotent, so run it again"
    if not isinstance(problem, _AgentFailed):
        return ReplayFailed(
            f"reading the event log failed: {describe_error(problem)}; {after}",
            report=report,
            agent=None,
            message_id=None,
        )
    message = problem.message
    where = "outside any message"
    if message is not None:
        offset = message.offset if isinstance(message, _Replayed) else None
        where = f"on message {message.message_id} ({message.routing_key}, log offset {offset})"
    return ReplayFailed(
        f"agent {problem.agent} failed {where}: {describe_error(problem.error)}; "
        f"{after} once the cause is fixed",
        report=report,
        agent=problem.agent,
        message_id=message.message_id if message is not None else None,
    )

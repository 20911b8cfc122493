"""Replay with a log held in memory and toy agents that count events, idempotently per event id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from payments.pipeline.app import App, UnknownAgent
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.replay import (
    NotReplayable,
    ReplayFailed,
    ReplayReport,
    ReplayStart,
    replay,
    replay_selection,
)
from payments.pipeline.stream import Event, Stream
from payments.pipeline.topology import Binding, Exchange, QueueSpec
from tests.fakes.context import fake_context
from tests.waiting import DEADLINE_SECONDS

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

PAYMENT_OUTCOMES = QueueSpec(
    "toy.payment_outcomes",
    (Binding(Exchange.PAYMENT, "payment.success"), Binding(Exchange.PAYMENT, "payment.failed")),
)
WEBHOOK_EVENTS = QueueSpec("toy.webhooks", (Binding(Exchange.WEBHOOK, "webhook.#"),))
COMMANDS = QueueSpec("toy.commands", (Binding(Exchange.COMMAND, "command.#"),))


class Fact(BaseModel):
    amount: int


@dataclass
class Entry:
    """A log entry as the reader hands it out; remembers whether it was acknowledged."""

    message_id: str | None
    exchange: str
    routing_key: str
    body: bytes = b'{"amount": 1}'
    timestamp: datetime | None = T0
    headers: Mapping[str, Any] = field(default_factory=dict)
    content_type: str | None = "application/json"
    message_type: str | None = None
    redelivered: bool = False
    reply_to: str | None = None
    correlation_id: str | None = None
    acked: bool = False

    async def ack(self) -> bool:
        assert not self.acked, f"{self.message_id} acknowledged twice"
        self.acked = True
        return True

    async def requeue(self) -> bool:
        raise AssertionError("a log entry is never requeued")


@dataclass
class MemoryLog:
    """An event log in memory: ``read`` hands out every entry in order (the caller filters by time)."""

    entries: list[Entry]
    reads: list[tuple[ReplayStart, datetime | None]] = field(default_factory=list)
    fail_after: int | None = None

    async def read(self, *, start: ReplayStart, end: datetime | None) -> AsyncGenerator[Entry, None]:
        self.reads.append((start, end))
        for index, entry in enumerate(self.entries):
            if self.fail_after is not None and index == self.fail_after:
                raise ConnectionError("broker went away")
            yield entry


@dataclass
class CountingTable:
    """A toy table: per agent, the events it counted, once per event id, in first-seen order."""

    seen: dict[str, dict[str, Event[Fact]]] = field(default_factory=dict)

    def add(self, agent: str, event: Event[Fact]) -> None:
        self.seen.setdefault(agent, {}).setdefault(event.event_id, event)

    def ids(self, agent: str) -> list[str]:
        return list(self.seen.get(agent, {}))


def toy_app(table: CountingTable, *, fail_on: str | None = None) -> App:
    toy, commands = Blueprint("toy"), Blueprint("commands")

    @toy.agent(PAYMENT_OUTCOMES, value_type=Fact, replayable=True)
    async def count_outcomes(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for event in stream:
            if event.event_id == fail_on:
                raise ValueError("cannot count this one")
            table.add("toy.count_outcomes", event)

    @toy.agent(WEBHOOK_EVENTS, value_type=Fact, concurrency=4, replayable=True)
    async def count_webhooks(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for event in stream:
            table.add("toy.count_webhooks", event)

    @commands.agent(COMMANDS, value_type=Fact)
    async def call_the_gateway(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for event in stream:
            table.add("commands.call_the_gateway", event)

    return App((toy, commands))


def payment(message_id: str | None, key: str = "payment.success", **fields: Any) -> Entry:
    return Entry(message_id, Exchange.PAYMENT.value, key, **fields)


def webhook(message_id: str, key: str = "webhook.cashfree.received", **fields: Any) -> Entry:
    return Entry(message_id, Exchange.WEBHOOK.value, key, **fields)


@pytest.fixture
def table() -> CountingTable:
    return CountingTable()


async def run(app: App, log: MemoryLog, *, agents=None, start: ReplayStart = 0, end=None, **options):
    reports: list[ReplayReport] = options.pop("reports", [])
    return await replay(
        app,
        fake_context(),
        log,
        agents=agents,
        start=start,
        end=end,
        progress=reports.append,
        **options,
    )


async def test_only_events_routed_to_the_agents_queue_reach_it_in_log_order(table):
    log = MemoryLog(
        [
            payment("p1"),
            payment("p2", "payment.created"),
            payment("p3", "payment.failed"),
            Entry("a1", Exchange.ANALYTICS.value, "payment.success"),  # right key, other exchange
            payment("p4", "payment.success.extra"),
            payment("p5"),
        ]
    )

    report = await run(toy_app(table), log, agents=["toy.count_outcomes"])

    assert table.ids("toy.count_outcomes") == ["p1", "p3", "p5"]
    assert report.read == 6
    assert report.fed == {"toy.count_outcomes": 3}


async def test_the_log_is_read_once_and_each_agent_gets_its_own_events(table):
    log = MemoryLog([payment("p1"), webhook("w1"), webhook("w2", "webhook.cashfree.retry"), payment("p2")])

    report = await run(toy_app(table), log, agents=["toy"])

    assert len(log.reads) == 1
    assert table.ids("toy.count_outcomes") == ["p1", "p2"]
    assert table.ids("toy.count_webhooks") == ["w1", "w2"]
    assert report.fed == {"toy.count_outcomes": 2, "toy.count_webhooks": 2}


async def test_by_default_every_replayable_agent_is_fed_and_no_other(table):
    log = MemoryLog(
        [payment("p1"), webhook("w1"), Entry("c1", Exchange.COMMAND.value, "command.payment.create")]
    )

    report = await run(toy_app(table), log)

    assert set(report.fed) == {"toy.count_outcomes", "toy.count_webhooks"}
    assert table.ids("toy.count_outcomes") == ["p1"]
    assert table.ids("toy.count_webhooks") == ["w1"]
    assert table.ids("commands.call_the_gateway") == []


async def test_an_agent_that_is_not_replayable_is_refused_before_anything_is_read(table):
    log = MemoryLog([Entry("c1", Exchange.COMMAND.value, "command.payment.create")])

    with pytest.raises(NotReplayable, match=r"not replayable: commands\.call_the_gateway") as refused:
        await run(toy_app(table), log, agents=["toy.count_outcomes", "commands"])

    assert "replayable agents: toy.count_outcomes, toy.count_webhooks" in str(refused.value)
    assert log.reads == []
    assert table.seen == {}


def test_an_app_without_replayable_agents_has_nothing_to_replay(table):
    app = toy_app(table).select(["commands"])

    with pytest.raises(NotReplayable, match="no agent is replayable"):
        replay_selection(app, None)


def test_an_unknown_agent_name_is_refused_with_the_known_ones(table):
    with pytest.raises(UnknownAgent, match="unknown agents: nope"):
        replay_selection(toy_app(table), ["nope"])


async def test_events_outside_the_time_range_are_read_and_acknowledged_but_not_fed(table):
    log = MemoryLog(
        [
            payment("early", timestamp=T0 - timedelta(seconds=1)),
            payment("same-second-as-start", timestamp=T0),
            payment("undated", timestamp=None),
            payment("at-end", timestamp=T0 + timedelta(minutes=5)),
            payment("late", timestamp=T0 + timedelta(minutes=5, seconds=1)),
            payment("stamped-back-in-range", timestamp=T0 + timedelta(minutes=1)),
        ]
    )

    report = await run(
        toy_app(table),
        log,
        agents=["toy.count_outcomes"],
        start=T0 + timedelta(microseconds=500_000),
        end=T0 + timedelta(minutes=5),
    )

    assert table.ids("toy.count_outcomes") == [
        "same-second-as-start",
        "undated",
        "at-end",
        "stamped-back-in-range",
    ]
    assert report.out_of_range == 2
    assert all(entry.acked for entry in log.entries)
    assert log.reads == [(T0 + timedelta(microseconds=500_000), T0 + timedelta(minutes=5))]


async def test_progress_is_reported_every_n_entries_with_what_each_agent_was_fed(table):
    reports: list[ReplayReport] = []
    log = MemoryLog(
        [payment("p1"), webhook("w1"), payment("p2"), payment("x", "payment.created"), webhook("w2")]
    )

    await run(toy_app(table), log, progress_every=2, progress_seconds=3600, reports=reports)

    assert [report.read for report in reports] == [2, 4]
    assert reports[0].fed == {"toy.count_outcomes": 1, "toy.count_webhooks": 1}
    assert reports[1].fed == {"toy.count_outcomes": 2, "toy.count_webhooks": 1}
    assert "read 4 entries" in reports[1].describe()


async def test_an_agent_failing_on_a_message_stops_the_replay_naming_the_agent_and_the_message(table):
    log = MemoryLog(
        [
            payment("p1"),
            webhook("w1"),
            payment("bad", headers={"x-stream-offset": 41}),
            *[payment(f"after-{n}") for n in range(300)],
        ]
    )

    with pytest.raises(ReplayFailed) as failed:
        await run(toy_app(table, fail_on="bad"), log, buffer=2)

    message = str(failed.value)
    assert "agent toy.count_outcomes failed on message bad (payment.success, log offset 41)" in message
    assert "ValueError: cannot count this one" in message
    assert "run it again" in message
    assert failed.value.agent == "toy.count_outcomes"
    assert failed.value.message_id == "bad"
    assert table.ids("toy.count_outcomes") == ["p1"]
    assert table.ids("toy.count_webhooks") == ["w1"]
    # The reader stopped soon after: the failed agent's lane holds at most ``buffer`` more.
    assert failed.value.report.read < 10
    assert not log.entries[-1].acked


async def test_a_log_that_cannot_be_read_fails_the_replay_after_what_was_fed(table):
    log = MemoryLog([payment("p1"), payment("p2"), payment("p3")], fail_after=2)

    with pytest.raises(ReplayFailed, match="reading the event log failed: ConnectionError") as failed:
        await run(toy_app(table), log)

    assert failed.value.agent is None
    assert failed.value.report.read == 2


async def test_a_message_that_does_not_validate_is_skipped_and_counted_as_the_live_run_dead_lettered_it(
    table,
):
    log = MemoryLog([payment("p1"), payment("garbled", body=b"not json"), payment(None), payment("p2")])

    report = await run(toy_app(table), log, agents=["toy.count_outcomes"])

    assert table.ids("toy.count_outcomes") == ["p1", "p2"]
    assert report.invalid == {"toy.count_outcomes": 2}
    assert "skipped as invalid toy.count_outcomes 2" in report.describe()


async def test_replaying_the_same_stretch_again_changes_no_table(table):
    def log() -> MemoryLog:
        return MemoryLog([payment("p1"), webhook("w1"), payment("p2", "payment.failed")])

    app = toy_app(table)

    await run(app, log())
    first = {agent: list(events) for agent, events in table.seen.items()}
    second = await run(app, log())

    assert {agent: list(events) for agent, events in table.seen.items()} == first
    assert second.fed == {"toy.count_outcomes": 2, "toy.count_webhooks": 1}


async def test_events_keep_their_ids_and_headers_but_never_carry_a_reply_address(table):
    log = MemoryLog(
        [
            payment(
                "p1", reply_to="amq.rabbitmq.reply-to", correlation_id="c-1", headers={"x-stream-offset": 7}
            )
        ]
    )

    await run(toy_app(table), log, agents=["toy.count_outcomes"])

    event = table.seen["toy.count_outcomes"]["p1"]
    assert event.value == Fact(amount=1)
    assert event.headers["x-stream-offset"] == 7
    assert event.occurred_at == T0
    assert (event.reply_to, event.correlation_id) == (None, None)


async def test_an_agent_that_returns_before_the_log_ends_fails_the_replay():
    quitter = Blueprint("quitter")

    @quitter.agent(PAYMENT_OUTCOMES, value_type=Fact, replayable=True)
    async def take_one(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for _ in stream:
            return

    log = MemoryLog([payment(f"p{n}") for n in range(10)])

    with pytest.raises(
        ReplayFailed, match=r"agent quitter\.take_one failed outside any message.*returned before"
    ):
        await run(App((quitter,)), log, buffer=1)


async def test_cancelling_a_replay_cancels_its_agents():
    stuck = Blueprint("stuck")
    started, cancelled = asyncio.Event(), asyncio.Event()

    @stuck.agent(PAYMENT_OUTCOMES, value_type=Fact, replayable=True)
    async def hang(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for _ in stream:
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    task = asyncio.create_task(run(App((stuck,)), MemoryLog([payment("p1")])))
    async with asyncio.timeout(DEADLINE_SECONDS):
        await started.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (datetime(2026, 1, 1), None, "timezone-aware"),
        (T0, T0 - timedelta(seconds=1), "before its start"),
        (-1, None, "negative"),
    ],
)
async def test_an_impossible_range_is_refused(table, start, end, problem):
    log = MemoryLog([payment("p1")])

    with pytest.raises(ValueError, match=problem):
        await run(toy_app(table), log, start=start, end=end)
    assert log.reads == []


def test_a_report_describes_itself_in_one_line():
    report = ReplayReport(
        read=200, out_of_range=10, fed={"a.b": 150, "c.d": 40}, invalid={"a.b": 0}, elapsed_seconds=2.0
    )

    assert report.describe() == "read 200 entries in 2.0 s (100/s, 10 out of range); fed a.b 150, c.d 40"
    assert json.dumps(report.fed)

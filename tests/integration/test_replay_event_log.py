"""``payments replay`` against the real event log: time ranges, offsets, and a read that always ends.

The run's vhost shares ``events.log`` with the other tests, so each test publishes under routing keys
of its own (``payment.<tag>.…``) and binds its toy agents to those: what the agents see is exactly
this test's events, while the reader still walks past everyone else's. The time-range test reads a
stream of its own, declared like ``events.log``: a read with an end stops at the first entry stamped
well past it, and another test's entry (stamped by a fixed test clock, say) must not be that entry.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import BaseModel

from payments.bridges.rabbitmq.consumer import Delivery
from payments.bridges.rabbitmq.event_log import END_MARK_TYPE, STREAM_OFFSET, EventLogMissing, EventLogReader
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import EVERYTHING, event_log_arguments
from payments.pipeline.app import App
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.replay import ReplayReport, ReplayStart, replay
from payments.pipeline.stream import Event, Stream
from payments.pipeline.topology import Binding, Exchange, QueueSpec
from tests.fakes.context import fake_context
from tests.integration.rabbitmq_support import unique
from tests.waiting import DEADLINE_SECONDS

pytestmark = pytest.mark.integration


class Fact(BaseModel):
    n: int


@dataclass
class Seen:
    """The toy agents' table: per agent, events by id (a replay never counts one twice), in order."""

    events: dict[str, dict[str, Event[Fact]]] = field(default_factory=dict)

    def add(self, agent: str, event: Event[Fact]) -> None:
        self.events.setdefault(agent, {}).setdefault(event.event_id, event)

    def ids(self, agent: str) -> list[str]:
        return list(self.events.get(agent, {}))


def toy_app(tag: str, seen: Seen) -> App:
    toy = Blueprint("toy")
    payments = QueueSpec(f"toy.{tag}.payments", (Binding(Exchange.PAYMENT, f"payment.{tag}.*"),))
    webhooks = QueueSpec(f"toy.{tag}.webhooks", (Binding(Exchange.WEBHOOK, f"webhook.{tag}.#"),))

    @toy.agent(payments, value_type=Fact, replayable=True)
    async def payments_seen(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for event in stream:
            seen.add("toy.payments_seen", event)

    @toy.agent(webhooks, value_type=Fact, replayable=True)
    async def webhooks_seen(stream: Stream[Fact], ctx: AgentContext) -> None:
        async for event in stream:
            seen.add("toy.webhooks_seen", event)

    return App((toy,))


@pytest.fixture
def tag() -> str:
    return f"replay{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def publish(connection: AbstractRobustConnection):
    channel = await connection.channel(publisher_confirms=True)
    publisher = RabbitPublisher(channel, timeout=5.0)

    async def publish_one(
        message_id: str, exchange: Exchange, routing_key: str, *, at: datetime | None, n: int = 0
    ) -> None:
        await publisher.publish(
            exchange=exchange.value,
            routing_key=routing_key,
            body=Fact(n=n).model_dump_json().encode(),
            message_id=message_id,
            timestamp=at,
        )

    yield publish_one
    await channel.close()


@pytest.fixture
async def own_log(connection: AbstractRobustConnection):
    """A stream of this test's own, declared and bound like ``events.log``; deleted afterwards."""
    name = unique("events.log.replay-test")
    channel = await connection.channel()
    stream = await channel.declare_queue(name, durable=True, arguments=event_log_arguments())
    for exchange in Exchange:
        await stream.bind(exchange.value, EVERYTHING)
    yield name
    await channel.queue_delete(name, if_unused=False, if_empty=False)
    await channel.close()


async def read_all(reader: EventLogReader, *, start: ReplayStart) -> list[Delivery]:
    entries = []
    async with asyncio.timeout(DEADLINE_SECONDS):
        async for entry in reader.read(start=start):
            entries.append(entry)
            await entry.ack()
    return entries


async def replay_into(
    app: App, reader: EventLogReader, *, start: ReplayStart, end: datetime | None = None
) -> ReplayReport:
    async with asyncio.timeout(DEADLINE_SECONDS):  # the read ends by itself, or this fails the test
        return await replay(
            app, fake_context(), reader, agents=None, start=start, end=end, progress=lambda report: None
        )


async def test_a_time_range_feeds_exactly_the_matching_events_stamped_in_it_in_log_order(
    connection, own_log, publish, tag
):
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    start, end, grace = base + timedelta(seconds=10), base + timedelta(seconds=30), timedelta(seconds=60)
    events = [
        ("before", Exchange.PAYMENT, f"payment.{tag}.created", 0),
        ("first", Exchange.PAYMENT, f"payment.{tag}.created", 10),
        ("analytics", Exchange.ANALYTICS, f"analytics.{tag}.created", 12),
        ("wrong-exchange", Exchange.ANALYTICS, f"payment.{tag}.created", 12),
        ("webhook", Exchange.WEBHOOK, f"webhook.{tag}.cashfree.received", 20),
        ("too-deep", Exchange.PAYMENT, f"payment.{tag}.deep.created", 20),
        ("at-end", Exchange.PAYMENT, f"payment.{tag}.success", 30),
        ("past-end", Exchange.PAYMENT, f"payment.{tag}.failed", 31),
        ("email", Exchange.EMAIL, f"email.{tag}.sent", 25),
        ("published-late", Exchange.PAYMENT, f"payment.{tag}.success", 29),
        ("beyond-grace", Exchange.PAYMENT, f"payment.{tag}.success", 30 + 60 + 1),
        ("after-the-stop", Exchange.PAYMENT, f"payment.{tag}.success", 15),
    ]
    for message_id, exchange, key, second in events:
        await publish(f"{tag}.{message_id}", exchange, key, at=base + timedelta(seconds=second))
    seen = Seen()

    report = await replay_into(
        toy_app(tag, seen), EventLogReader(connection, stream=own_log, end_grace=grace), start=start, end=end
    )

    assert seen.ids("toy.payments_seen") == [f"{tag}.first", f"{tag}.at-end", f"{tag}.published-late"]
    assert seen.ids("toy.webhooks_seen") == [f"{tag}.webhook"]
    assert [event.occurred_at for event in seen.events["toy.payments_seen"].values()] == [
        base + timedelta(seconds=10),
        base + timedelta(seconds=30),
        base + timedelta(seconds=29),
    ]
    assert report.fed == {"toy.payments_seen": 3, "toy.webhooks_seen": 1}
    # Read up to the first entry stamped past the grace, and no further.
    assert report.read == len(events) - 2


async def test_without_an_end_the_read_stops_at_the_end_of_the_log_and_a_second_replay_changes_nothing(
    connection, publish, tag
):
    now = datetime.now(UTC)
    published = []
    for n in range(6):
        exchange, key = (
            (Exchange.PAYMENT, f"payment.{tag}.success")
            if n % 2
            else (Exchange.WEBHOOK, f"webhook.{tag}.cashfree.received")
        )
        message_id = f"{tag}.{n}"
        await publish(message_id, exchange, key, at=None if n == 4 else now, n=n)
        published.append(message_id)
    seen = Seen()
    app = toy_app(tag, seen)

    first = await replay_into(app, EventLogReader(connection), start=now - timedelta(minutes=1))
    table = {agent: list(events) for agent, events in seen.events.items()}
    second = await replay_into(app, EventLogReader(connection), start=now - timedelta(minutes=1))

    assert seen.ids("toy.payments_seen") == published[1::2]
    assert seen.ids("toy.webhooks_seen") == published[0::2]
    assert {agent: list(events) for agent, events in seen.events.items()} == table
    assert first.fed == second.fed == {"toy.payments_seen": 3, "toy.webhooks_seen": 3}


async def test_end_marks_stay_in_the_log_but_are_never_handed_out(connection, publish, tag):
    now = datetime.now(UTC)
    await publish(f"{tag}.event", Exchange.PAYMENT, f"payment.{tag}.success", at=now)
    reader = EventLogReader(connection)

    first = await read_all(reader, start=now - timedelta(minutes=1))
    second = await read_all(reader, start=now - timedelta(minutes=1))  # walks past the first's mark

    assert f"{tag}.event" in [entry.message_id for entry in first]
    assert f"{tag}.event" in [entry.message_id for entry in second]
    assert [entry for entry in first + second if entry.message_type == END_MARK_TYPE] == []
    offsets = [entry.headers[STREAM_OFFSET] for entry in second]
    assert offsets == sorted(set(offsets))


async def test_a_replay_from_an_offset_starts_exactly_there(connection, publish, tag):
    now = datetime.now(UTC)
    for n in range(5):
        await publish(f"{tag}.{n}", Exchange.PAYMENT, f"payment.{tag}.success", at=now, n=n)
    seen = Seen()
    await replay_into(toy_app(tag, seen), EventLogReader(connection), start=now - timedelta(minutes=1))
    offsets = [event.headers[STREAM_OFFSET] for event in seen.events["toy.payments_seen"].values()]
    assert offsets == sorted(offsets)

    again = Seen()
    report = await replay_into(toy_app(tag, again), EventLogReader(connection), start=offsets[2])

    assert again.ids("toy.payments_seen") == [f"{tag}.2", f"{tag}.3", f"{tag}.4"]
    assert report.fed["toy.payments_seen"] == 3


async def test_an_offset_past_the_end_of_the_log_reads_nothing_and_ends(connection, tag):
    report = await replay_into(toy_app(tag, Seen()), EventLogReader(connection), start=10**12)

    assert report.read == 0
    assert report.fed == {"toy.payments_seen": 0, "toy.webhooks_seen": 0}


async def test_a_missing_event_log_is_a_clear_error(connection):
    reader = EventLogReader(connection, stream=f"no.such.stream.{uuid.uuid4().hex[:8]}")

    with pytest.raises(EventLogMissing, match="does not exist; run `payments topology`"):
        await read_all(reader, start=0)

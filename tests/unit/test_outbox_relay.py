"""The outbox relay over an in-memory outbox: publish, mark, retry what was not confirmed."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from payments.bridges.postgres.outbox import OutboxBacklog, PendingEvent
from payments.domain.errors import DependencyUnavailable
from payments.pipeline import metrics as metrics_module
from payments.pipeline.outbox_relay import OutboxRelay
from tests.fakes.broker import RecordingPublisher
from tests.waiting import eventually


@dataclass
class Batch:
    events: list[PendingEvent]
    marked: list[int] = field(default_factory=list)

    async def mark_published(self, ids) -> None:
        self.marked.extend(ids)


class InMemoryRelayStore:
    def __init__(self) -> None:
        self.rows: dict[int, PendingEvent] = {}
        self.published: set[int] = set()
        self.wake = asyncio.Event()

    def add(self, n: int) -> None:
        for _ in range(n):
            row_id = len(self.rows) + 1
            self.rows[row_id] = PendingEvent(
                row_id,
                f"evt-{row_id}",
                "payment.exchange",
                "payment.created",
                b"{}",
                {"traceparent": "t"},
                datetime(2026, 1, 1, tzinfo=UTC),
            )
        self.wake.set()

    @asynccontextmanager
    async def claim_batch(self, limit: int):
        batch = Batch(
            [row for row_id, row in sorted(self.rows.items()) if row_id not in self.published][:limit]
        )
        yield batch
        self.published.update(batch.marked)  # "commit"

    async def backlog(self) -> OutboxBacklog:
        return OutboxBacklog(len(self.rows) - len(self.published), 0.0)

    @asynccontextmanager
    async def notifications(self):
        yield self.wake

    async def prune_published(self, older_than: timedelta) -> int:
        return 0


@pytest.fixture
def metrics():
    return metrics_module.create(CollectorRegistry())


async def test_one_pass_publishes_a_batch_and_marks_exactly_those_events(metrics):
    store, publisher = InMemoryRelayStore(), RecordingPublisher()
    store.add(5)
    relay = OutboxRelay(store, publisher, batch_size=3, poll_seconds=1, metrics=metrics)

    assert await relay.publish_pending() == 3

    assert store.published == {1, 2, 3}
    first = publisher.published[0]
    assert (first.exchange, first.routing_key, first.message_id) == (
        "payment.exchange",
        "payment.created",
        "evt-1",
    )
    assert first.headers == {"traceparent": "t"}
    assert first.message_type == "payment.created"


async def test_events_whose_publish_failed_stay_in_the_outbox(metrics):
    store, publisher = InMemoryRelayStore(), RecordingPublisher()
    store.add(3)
    publisher.fail_next = 1
    relay = OutboxRelay(store, publisher, batch_size=10, poll_seconds=1, metrics=metrics)

    with pytest.raises(DependencyUnavailable):
        await relay.publish_pending()

    assert len(store.published) == 2
    assert await relay.drain() == 1
    assert store.published == {1, 2, 3}
    assert metrics.outbox_backlog._value.get() == 0


async def test_the_running_relay_wakes_on_notification_and_survives_an_outage(metrics):
    store, publisher = InMemoryRelayStore(), RecordingPublisher()
    relay = OutboxRelay(store, publisher, batch_size=10, poll_seconds=30, metrics=metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    store.add(2)
    await eventually(lambda: len(store.published) == 2, what="two events published")
    publisher.fail_next = 1
    store.add(1)
    await eventually(lambda: len(store.published) == 3, what="the event delayed by the outage", timeout=15)
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    assert sorted(p.message_id for p in publisher.published) == ["evt-1", "evt-2", "evt-3"]
    assert metrics.outbox_published._value.get() == 3


async def test_while_the_broker_refuses_the_backlog_gauges_keep_counting(metrics):
    store, publisher = InMemoryRelayStore(), RecordingPublisher()
    relay = OutboxRelay(store, publisher, batch_size=10, poll_seconds=30, metrics=metrics)
    publisher.fail_next = 1_000
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))

    store.add(4)
    await eventually(lambda: metrics.outbox_backlog._value.get() == 4, what="the stuck backlog reported")
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    assert store.published == set()

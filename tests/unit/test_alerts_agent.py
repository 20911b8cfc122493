"""The alerts agent and queue watch over fakes: counted once, raised once, replays rebuild and stay quiet."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from payments.agents.alerts import (
    POLL_TICK_SECONDS,
    EventTables,
    ObservedEvent,
    alerts,
    poll_due,
    poll_interval,
    watch_queues,
)
from payments.domain.alerts.model import StoredAlert
from payments.domain.alerts.rules import QueueDepth
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import load_settings
from payments.tables.memory import MemoryWindowStore
from tests.alert_events import again, payment_outcome, refund_created, run_alerts_agent, webhook_failure
from tests.fakes.broker import FakeMessage
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore

LIMITS = {
    "ALERT_WINDOW_SECONDS": "300",
    "ALERT_FAILURE_RATE_THRESHOLD": "0.5",
    "ALERT_MIN_VOLUME": "10",
    "ALERT_WEBHOOK_FAILURES": "3",
    "ALERT_REFUND_SPIKE": "3",
    "ALERT_DLQ_GROWTH": "2",
    "ALERT_QUEUE_DEPTH": "100",
    "ALERT_POLL_SECONDS": "30",
    "ALERT_COOLDOWN_SECONDS": "900",
}


@dataclass
class World:
    store: InMemoryStore = field(default_factory=InMemoryStore)
    tables: MemoryWindowStore = field(default_factory=MemoryWindowStore)
    gauge: CountingGauge = field(default_factory=lambda: CountingGauge([]))

    def context(self, **limits: str) -> AgentContext:
        settings = load_settings({**LIMITS, **limits})
        return fake_context(store=self.store, tables=self.tables, settings=settings, queues=self.gauge)

    def alerts(self) -> list[StoredAlert]:
        return sorted(self.store.alert_tables.alerts.values(), key=lambda stored: stored.sequence)

    def mailed(self) -> list[dict[str, Any]]:
        return [
            dict(e.payload) for e in self.store.outbox_events.values() if e.routing_key == "email.admin.alert"
        ]


@dataclass
class CountingGauge:
    """A ``QueueGauge`` whose depths a test sets between polls; it counts the polls and can be down."""

    current: Sequence[QueueDepth]
    polls: int = 0
    down: bool = False

    async def depths(self) -> Sequence[QueueDepth]:
        if self.down:
            raise DependencyUnavailable("broker down")
        self.polls += 1
        return self.current


def second(n: int) -> datetime:
    return NOW - timedelta(seconds=60) + timedelta(seconds=n)


def upi_spike() -> list[FakeMessage]:
    """8 card successes, 4 UPI successes, then 8 UPI failures: UPI's rate passes 0.5 at the 6th
    failure (6 of 10); the overall rate never does (8 of 20)."""
    card = [payment_outcome(succeeded=True, method="card", n=n, at=second(n)) for n in range(8)]
    upi_ok = [payment_outcome(succeeded=True, method="upi", n=n, at=second(10 + n)) for n in range(4)]
    upi_failed = [
        payment_outcome(succeeded=False, method="upi", n=10 + n, at=second(20 + n)) for n in range(8)
    ]
    return [*card, *upi_ok, *upi_failed]


async def snapshots(context: AgentContext) -> dict[str, Any]:
    tables = EventTables.of(context)
    return {
        table.name: await table.snapshot()
        for table in (tables.succeeded, tables.failed, tables.webhook_failures, tables.refunds)
    }


async def test_a_failure_rate_spike_of_one_method_raises_one_alert_and_mails_it():
    world = World()

    await run_alerts_agent(world.context(), *upi_spike())

    [stored] = world.alerts()
    alert = stored.alert
    assert (alert.kind, alert.subject, alert.source) == ("payment_failure_rate", "method:upi", "alerts")
    assert alert.raised_at == second(25)  # the 6th failure's time
    assert alert.since == second(25) - timedelta(minutes=5)
    assert {k: alert.details[k] for k in ("failed", "succeeded", "rate", "threshold")} == {
        "failed": 6,
        "succeeded": 4,
        "rate": "0.6000",
        "threshold": "0.5",
    }
    [mail] = world.mailed()
    assert (mail["alertId"], mail["kind"], mail["subject"]) == (alert.alert_id, alert.kind, alert.subject)


async def test_a_failure_rate_exactly_at_the_threshold_stays_quiet_until_it_passes_it():
    world = World()
    ok = [payment_outcome(succeeded=True, method="upi", n=n, at=second(n)) for n in range(5)]
    failed = [payment_outcome(succeeded=False, method="upi", n=10 + n, at=second(10 + n)) for n in range(5)]

    await run_alerts_agent(world.context(), *ok, *failed)
    assert world.alerts() == []

    await run_alerts_agent(
        world.context(), payment_outcome(succeeded=False, method="upi", n=99, at=second(30))
    )
    assert [s.alert.subject for s in world.alerts()] == ["method:upi", "method:all"]


async def test_the_overall_rate_fires_when_no_single_method_has_the_volume():
    world = World()
    methods = ["upi", "card", "netbanking"]
    failures = [payment_outcome(succeeded=False, method=methods[n % 3], n=n, at=second(n)) for n in range(9)]

    await run_alerts_agent(
        world.context(), payment_outcome(succeeded=True, method="app", n=99, at=second(0)), *failures
    )

    [stored] = world.alerts()
    assert (stored.alert.subject, stored.alert.severity.value) == ("method:all", "critical")
    assert (stored.alert.details["failed"], stored.alert.details["succeeded"]) == (9, 1)


async def test_a_success_that_completes_the_minimum_volume_can_raise_the_alert():
    world = World()
    failures = [payment_outcome(succeeded=False, method="upi", n=n, at=second(n)) for n in range(9)]

    await run_alerts_agent(world.context(), *failures)
    assert world.alerts() == []

    await run_alerts_agent(
        world.context(), payment_outcome(succeeded=True, method="upi", n=99, at=second(20))
    )
    assert {s.alert.subject for s in world.alerts()} == {"method:upi", "method:all"}


async def test_failures_spread_wider_than_the_window_do_not_add_up():
    world = World()
    far_apart = [
        payment_outcome(succeeded=False, method="upi", n=n, at=NOW - timedelta(minutes=5 * (9 - n)))
        for n in range(10)
    ]

    await run_alerts_agent(world.context(), *far_apart)

    assert world.alerts() == []


async def test_a_payment_without_a_method_counts_as_unknown():
    world = World()
    failures = [payment_outcome(succeeded=False, method=None, n=n, at=second(n)) for n in range(10)]

    await run_alerts_agent(world.context(), *failures)

    assert {s.alert.subject for s in world.alerts()} == {"method:unknown", "method:all"}


async def test_webhook_failures_at_the_limit_raise_one_alert_per_cooldown():
    world = World()

    await run_alerts_agent(world.context(), *[webhook_failure(n=n, at=second(n)) for n in range(5)])

    [stored] = world.alerts()
    assert (stored.alert.kind, stored.alert.subject) == ("webhook_failures", "webhooks:cashfree")
    assert stored.alert.details["failures"] == 3
    assert stored.alert.raised_at == second(2)


async def test_refunds_at_the_limit_raise_a_refund_spike():
    world = World()

    await run_alerts_agent(world.context(), *[refund_created(n=n, at=second(n)) for n in range(2)])
    assert world.alerts() == []
    await run_alerts_agent(world.context(), refund_created(n=2, at=second(2)))

    [stored] = world.alerts()
    assert (stored.alert.kind, stored.alert.subject, stored.alert.details["refunds"]) == (
        "refund_spike",
        "refunds:all",
        3,
    )


async def test_more_failures_within_the_cooldown_raise_nothing_more_and_after_it_raise_again():
    world = World()
    await run_alerts_agent(world.context(), *upi_spike())
    later = [
        payment_outcome(succeeded=False, method="upi", n=100 + n, at=second(40) + timedelta(minutes=n))
        for n in range(3)
    ]

    await run_alerts_agent(world.context(), *later)
    assert len(world.alerts()) == 1

    world_after = World()
    await run_alerts_agent(world_after.context(ALERT_COOLDOWN_SECONDS="10"), *upi_spike(), *later[:1])
    assert [s.alert.raised_at for s in world_after.alerts()] == [second(25), second(40)]


async def test_the_same_events_processed_twice_change_no_table_and_raise_nothing():
    world = World()
    messages = [
        *upi_spike(),
        *[webhook_failure(n=n, at=second(n)) for n in range(3)],
        refund_created(n=1, at=NOW),
    ]
    context = world.context()
    await run_alerts_agent(context, *messages)
    tables_before, alerts_before, outbox_before = (
        await snapshots(context),
        world.alerts(),
        dict(world.store.outbox_events),
    )

    await run_alerts_agent(context, *[again(m) for m in messages])

    assert await snapshots(context) == tables_before
    assert world.alerts() == alerts_before
    assert world.store.outbox_events == outbox_before
    assert len(alerts_before) == 2  # the UPI rate and the webhook failures, each once


async def test_a_replay_into_empty_tables_rebuilds_them_and_the_inbox_keeps_it_quiet():
    world = World()
    messages = upi_spike()
    live = world.context()
    await run_alerts_agent(live, *messages)
    live_tables, live_alerts = await snapshots(live), world.alerts()

    # The replay starts from empty tables (the database stays) and, to show that the inbox and not
    # the cooldown keeps it quiet, with no cooldown: the 7th and 8th failures would raise otherwise.
    world.tables = MemoryWindowStore()
    replay = world.context(ALERT_COOLDOWN_SECONDS="0")
    await run_alerts_agent(replay, *[again(m) for m in messages])

    assert await snapshots(replay) == live_tables
    assert live_tables["alerts.payments_failed"]["upi"]  # the snapshot is not trivially empty
    assert world.alerts() == live_alerts
    assert len(live_alerts) == 1


async def test_events_the_replay_sees_first_are_alerted_on_like_live_ones():
    world = World()
    messages = upi_spike()
    await run_alerts_agent(world.context(), *messages[:-1])
    world.tables = MemoryWindowStore()

    await run_alerts_agent(world.context(ALERT_COOLDOWN_SECONDS="0"), *[again(m) for m in messages])

    assert [s.alert.raised_at for s in world.alerts()] == [second(25), second(27)]


async def test_a_message_back_from_a_retry_tier_is_counted_by_its_payload_not_its_routing_key():
    world = World()
    failures = [payment_outcome(succeeded=False, method="upi", n=n, at=second(n)) for n in range(10)]
    for message in failures:
        message.routing_key = "alerts.payments"

    await run_alerts_agent(world.context(), *failures)

    assert {s.alert.subject for s in world.alerts()} == {"method:upi", "method:all"}


async def test_a_message_the_alerts_do_not_count_goes_to_the_dead_letter_queue():
    world = World()
    stray = FakeMessage(
        body=json.dumps({"type": "payment.created", "paymentId": "pay_1"}).encode(), message_id="m1"
    )

    publisher = await run_alerts_agent(world.context(), stray)

    [moved] = publisher.published
    assert moved.routing_key == "alerts.payments.dlq"


def test_an_observed_event_ignores_fields_it_does_not_read_and_lowercases_the_method():
    observed = ObservedEvent.model_validate(
        {"type": "payment.failed", "paymentMethod": "UPI", "amount": "1.00"}
    )

    assert observed.method == "upi"
    with pytest.raises(ValueError, match="neither"):
        ObservedEvent.model_validate({"status": "FAILED"})


def test_the_alerts_agent_consumes_its_queue_and_polls_on_a_tick():
    [spec] = alerts.agents
    [timer] = alerts.timers

    assert spec.queue.name == "alerts.payments"
    assert spec.replayable  # its effects are tables and inbox-guarded writes
    assert {b.routing_key for b in spec.queue.bindings} == {
        "payment.success",
        "payment.failed",
        "analytics.webhook.failure",
        "analytics.refund.created",
    }
    assert (timer.name, timer.seconds) == ("alerts.watch_queues", POLL_TICK_SECONDS)


# The queue watch. NOW is 10:00:00, a multiple of 30 s; the scheduler fires ticks on multiples of 5 s.


def at_tick(context: AgentContext, moment: datetime) -> AgentContext:
    context.clock.current = moment  # type: ignore[attr-defined]
    return context


def test_a_poll_is_due_on_the_one_tick_after_each_multiple_of_the_interval():
    interval = timedelta(seconds=30)
    ticks = [NOW + timedelta(seconds=5 * n) for n in range(-1, 7)]

    due = [moment for moment in ticks if poll_due(moment, interval=interval)]

    assert due == [NOW, NOW + timedelta(seconds=30)]
    assert poll_due(NOW + timedelta(seconds=4.9), interval=interval)
    assert not poll_due(NOW + timedelta(seconds=5), interval=interval)


def test_the_poll_interval_is_at_least_one_tick():
    assert poll_interval(load_settings({"ALERT_POLL_SECONDS": "1"}).alerts) == timedelta(
        seconds=POLL_TICK_SECONDS
    )
    assert poll_interval(load_settings({"ALERT_POLL_SECONDS": "30"}).alerts) == timedelta(seconds=30)


async def test_a_tick_between_polls_does_not_ask_the_broker():
    world = World()

    await watch_queues(at_tick(world.context(), NOW + timedelta(seconds=5)))

    assert world.gauge.polls == 0


async def test_a_dlq_that_grows_by_the_limit_between_polls_raises_one_alert():
    world = World()
    context = world.context()
    world.gauge.current = [QueueDepth("payments.commands.dlq", 5, 0), QueueDepth("emails.outgoing.dlq", 0, 0)]
    await watch_queues(at_tick(context, NOW))
    assert world.alerts() == []  # the first poll only sets the baseline

    world.gauge.current = [QueueDepth("payments.commands.dlq", 7, 0), QueueDepth("emails.outgoing.dlq", 1, 0)]
    await watch_queues(at_tick(context, NOW + timedelta(seconds=30)))

    [stored] = world.alerts()
    assert (stored.alert.kind, stored.alert.subject) == ("dlq_growth", "queue:payments.commands.dlq")
    assert (stored.alert.details["previous"], stored.alert.details["growth"]) == (5, 2)
    assert stored.alert.since == NOW
    assert len(world.mailed()) == 1


async def test_an_empty_dlq_is_a_baseline_too():
    world = World()
    context = world.context()
    world.gauge.current = [QueueDepth("payments.commands.dlq", 0, 0)]
    await watch_queues(at_tick(context, NOW))
    world.gauge.current = [QueueDepth("payments.commands.dlq", 2, 0)]

    await watch_queues(at_tick(context, NOW + timedelta(seconds=30)))

    assert [s.alert.details["growth"] for s in world.alerts()] == [2]


async def test_a_dlq_is_not_compared_with_a_poll_that_did_not_happen():
    world = World()
    context = world.context()
    world.gauge.current = [QueueDepth("payments.commands.dlq", 0, 0)]
    await watch_queues(at_tick(context, NOW))
    world.gauge.current = [QueueDepth("payments.commands.dlq", 50, 0)]

    await watch_queues(at_tick(context, NOW + timedelta(seconds=60)))  # the 30 s poll was missed

    assert world.alerts() == []


async def test_an_overloaded_work_queue_raises_an_alert_once_per_cooldown():
    world = World()
    context = world.context()
    world.gauge.current = [QueueDepth("emails.outgoing", 100, 0), QueueDepth("payments.commands", 99, 2)]

    await watch_queues(at_tick(context, NOW))
    await watch_queues(at_tick(context, NOW + timedelta(seconds=30)))

    [stored] = world.alerts()
    assert (stored.alert.kind, stored.alert.subject, stored.alert.severity.value) == (
        "queue_overload",
        "queue:emails.outgoing",
        "critical",
    )
    assert world.gauge.polls == 2


async def test_a_broker_that_cannot_be_asked_fails_the_poll_and_raises_nothing():
    world = World()
    world.gauge.down = True

    with pytest.raises(DependencyUnavailable):
        await watch_queues(at_tick(world.context(), NOW))

    assert world.alerts() == []

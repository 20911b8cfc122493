"""The fraud agent over a fake context: tables kept from payment events, spikes alerted once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from payments.agents.fraud import PaymentEventPayload, fraud
from payments.agents.fraud_tables import FraudTables, fraud_tables
from payments.domain.fraud.rules import FailureRule, FraudRules, SpikeRule, Subject, VelocityRule
from payments.domain.fraud.screen import Assessment, PaymentAttempt
from payments.domain.fraud.signals import Verdict
from payments.domain.money import Money
from payments.domain.payment.events import PaymentCreated, PaymentFailed, PaymentSucceeded
from payments.domain.payment.model import CustomerDetails, Payment
from payments.domain.payment.states import PaymentState
from payments.pipeline.settings import FraudSettings, Settings
from payments.tables import MemoryWindowStore
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore

IP = "203.0.113.7"
RULES = FraudRules(
    velocity=(VelocityRule(name="ip_per_minute", subject=Subject.IP, window_seconds=60, limit=Decimal(100)),),
    failures=(
        FailureRule(name="user_failures", subject=Subject.USER, window_seconds=3600, limit=10),
        FailureRule(name="ip_failures", subject=Subject.IP, window_seconds=3600, limit=10),
    ),
    spike=SpikeRule(window_seconds=60, baseline_windows=5, factor=Decimal(2), min_count=3),
)


def context(*, enabled: bool = True, store: InMemoryStore | None = None, tables=None):
    settings = Settings(fraud=FraudSettings(enabled=enabled, rules=RULES, alert_cooldown_seconds=600))
    overrides = {"tables": tables} if tables is not None else {}
    return fake_context(settings=settings, store=store or InMemoryStore(), **overrides)


def payment(n: int, *, status: PaymentState = PaymentState.CREATED, version: int = 1) -> Payment:
    return Payment(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        user_id="user-1",
        amount=Money.of("499.00", "INR"),
        status=status,
        customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone="9876543210"),
        gateway="cashfree",
        client_ip=IP,
        version=version,
        created_at=NOW,
        updated_at=NOW,
    )


def message(event, *, redelivered: bool = False) -> FakeMessage:
    """The first outbox message of ``event``, as the broker would deliver it."""
    outgoing = event.outgoing()[0]
    return FakeMessage(
        body=json.dumps(dict(outgoing.payload)).encode(),
        message_id=outgoing.event_id,
        routing_key=outgoing.routing_key,
        redelivered=redelivered,
    )


def created(n: int, *, at: datetime = NOW) -> FakeMessage:
    subjects = {"user": "user-1", "ip": IP}
    assessment = Assessment(verdict=Verdict.ALLOW, score=0, subjects=subjects)
    return message(
        PaymentCreated(event_id=f"evt_pay_{n}_v1", payment=payment(n), occurred_at=at, assessment=assessment)
    )


def failed(n: int, *, version: int = 3) -> FakeMessage:
    failed_payment = payment(n, status=PaymentState.FAILED, version=version)
    return message(PaymentFailed(event_id=f"evt_pay_{n}_v{version}", payment=failed_payment, occurred_at=NOW))


async def deliver(ctx, *messages: FakeMessage) -> None:
    [spec] = fraud.agents
    await run_until_settled(spec, ctx, *messages)
    assert all(m.settled == "acked" for m in messages)


async def observe(ctx) -> dict[str, int]:
    """What a fresh payment from the same user and IP would observe now (it counts itself too)."""
    probe = PaymentAttempt(
        payment_id="pay_probe", user_id="user-1", amount=Money.of("1", "INR"), at=NOW, ip_address=IP
    )
    observed = await tables_of(ctx).record_attempt(probe)
    return dict(observed.values)


def tables_of(ctx) -> FraudTables:
    return fraud_tables(ctx)


def spike_alerts(store: InMemoryStore):
    return [s.alert for s in store.alert_tables.alerts.values() if s.alert.kind == "payment_spike"]


def test_the_value_type_reads_what_payment_events_carry_and_ignores_the_rest():
    body = json.loads(created(1).body)

    value = PaymentEventPayload.model_validate(body | {"somethingNew": 1})

    assert (value.type, value.payment_id, value.client_ip) == ("payment.created", "pay_1", IP)
    assert value.money == Money.of("499.00", "INR")
    assert value.occurred_at == NOW
    assert value.risk is not None
    assert value.risk.subjects == {"user": "user-1", "ip": IP}


async def test_created_payments_are_applied_to_empty_tables_and_counted_once():
    ctx = context()

    await deliver(ctx, created(1), created(2), created(1, at=NOW))
    await deliver(ctx, created(2))

    assert (await observe(ctx))["ip_per_minute"] == 3  # two payments and the probe


async def test_failures_count_against_the_user_and_the_client_ip_once_per_failure():
    ctx = context()

    await deliver(ctx, failed(1, version=3), failed(1, version=3), failed(1, version=5), failed(2))

    values = await observe(ctx)
    assert (values["user_failures"], values["ip_failures"]) == (3, 3)


async def test_successes_change_no_table():
    ctx = context()
    success = message(
        PaymentSucceeded(
            event_id="evt_pay_1_v3", payment=payment(1, status=PaymentState.SUCCESS), occurred_at=NOW
        )
    )

    await deliver(ctx, success)

    values = await observe(ctx)
    assert (values["ip_per_minute"], values["user_failures"]) == (1, 0)


async def test_a_volume_spike_is_stored_as_a_signal_and_alerted_once():
    store = InMemoryStore()
    ctx = context(store=store)

    await deliver(ctx, *(created(n) for n in range(1, 7)))

    [alert] = spike_alerts(store)
    assert (alert.subject, alert.severity.value) == ("overall:all", "warning")
    assert alert.raised_at == NOW
    # Several events saw the spike; its signal is dated at the window's start, so it is stored once.
    [spike] = [s for s in store.alert_tables.signals.values() if s.rule == "volume_spike"]
    assert (spike.subject_kind, spike.subject, spike.payment_id) == ("overall", "all", None)
    assert (spike.verdict, spike.created_at) == (Verdict.REVIEW, NOW)
    mailed = [e for e in store.outbox_events.values() if e.routing_key == "email.admin.alert"]
    assert [m.payload["kind"] for m in mailed] == ["payment_spike"]


async def test_no_spike_below_the_minimum_count():
    store = InMemoryStore()
    ctx = context(store=store)

    await deliver(ctx, created(1), created(2))

    assert spike_alerts(store) == []
    assert store.alert_tables.signals == {}


async def test_a_replay_into_empty_tables_rebuilds_them_though_the_inbox_has_seen_the_events():
    store = InMemoryStore()
    live = context(store=store)
    events = [created(n) for n in range(1, 5)]
    await deliver(live, *events)
    live_values = await observe(live)

    replayed = context(store=store, tables=MemoryWindowStore())  # same database, Redis flushed
    await deliver(replayed, *(created(n) for n in range(1, 5)))

    assert await observe(replayed) == live_values
    assert len(spike_alerts(store)) == 1  # the replay raised nothing new


async def test_a_switched_off_screen_leaves_the_tables_alone():
    store = InMemoryStore()
    ctx = context(enabled=False, store=store)

    await deliver(ctx, *(created(n) for n in range(1, 7)), failed(1))

    values = await observe(ctx)
    assert (values["ip_per_minute"], values["user_failures"]) == (1, 0)
    assert spike_alerts(store) == []


async def test_an_event_that_is_not_a_payment_event_is_dead_lettered():
    ctx = context()
    garbage = FakeMessage(body=b'{"type": "payment.created"}', message_id="m1", routing_key="payment.created")
    [spec] = fraud.agents

    publisher = await run_until_settled(spec, ctx, garbage)

    assert [p.routing_key for p in publisher.published] == [spec.queue.dead_letter_queue]
    assert (await observe(ctx))["ip_per_minute"] == 1


async def test_events_from_long_ago_are_late_and_change_nothing():
    ctx = context()

    await deliver(ctx, created(1, at=NOW - timedelta(days=2)))

    assert (await observe(ctx))["ip_per_minute"] == 1


def test_the_agent_may_be_replayed_from_the_event_log():
    [spec] = fraud.agents

    assert spec.replayable is True
    assert spec.queue.name == "fraud.payments"

"""Payment create consults the fraud screen: allow, review (alert) or block (cancelled, refused)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from payments.agents.fraud_tables import FraudTables, TableFraudScreen
from payments.domain.errors import DependencyUnavailable
from payments.domain.fraud.rules import FraudRules, Subject, VelocityRule
from payments.domain.fraud.screen import Assessment, PaymentAttempt, PaymentBlocked
from payments.domain.fraud.signals import Verdict
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, CreatePayment, VerifyPayment
from payments.domain.payment.model import CustomerDetails
from payments.domain.payment.service import BLOCKED_REASON, PaymentService
from payments.domain.payment.states import PaymentState
from payments.pipeline.error_status import status_for
from payments.tables import MemoryWindowStore
from tests.fakes.context import fake_digest
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.storage import InMemoryStore

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
IP = "203.0.113.7"
COOLDOWN = timedelta(seconds=30)

RULES = FraudRules(
    velocity=(
        VelocityRule(name="ip_per_minute", subject=Subject.IP, window_seconds=60, limit=Decimal(3)),
        VelocityRule(
            name="ip_per_minute_review",
            subject=Subject.IP,
            window_seconds=60,
            limit=Decimal(2),
            verdict=Verdict.REVIEW,
        ),
        VelocityRule(name="ip_per_ten_minutes", subject=Subject.IP, window_seconds=600, limit=Decimal(3)),
    )
)


class World:
    def __init__(self, screen=None) -> None:
        self.store = InMemoryStore()
        self.clock = FixedClock(NOW)
        self.gateway = InMemoryGateway(now=NOW)
        self.tables = FraudTables(MemoryWindowStore(), rules=RULES, clock=self.clock, digest=fake_digest)
        self.service = PaymentService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            locks=InMemoryPaymentLocks(),
            clock=self.clock,
            fraud=screen or TableFraudScreen(self.tables),
            fraud_alert_cooldown=COOLDOWN,
        )

    async def payment(self, payment_id: str):
        async with self.store.unit_of_work() as uow:
            return await uow.payments.get(payment_id)

    def outbox(self, routing_key: str, payment_id: str | None = None) -> list[dict[str, Any]]:
        return [
            dict(e.payload)
            for e in self.store.outbox_events.values()
            if e.routing_key == routing_key and payment_id in (None, e.payload.get("paymentId"))
        ]

    def alerts(self):
        return sorted((s.alert for s in self.store.alert_tables.alerts.values()), key=lambda a: a.raised_at)

    def signals(self, payment_id: str):
        return [s for s in self.store.alert_tables.signals.values() if s.payment_id == payment_id]

    def audit_actions(self, payment_id: str) -> list[str]:
        return [row.entry.action for row in self.store.audit_rows if row.entry.resource_id == payment_id]


def create(
    n: int, *, ip: str | None = IP, device: str | None = "dev-1", user: str = "user-1"
) -> CreatePayment:
    actor = Actor(actor_id=user, ip_address=ip, trace_id="a" * 32, request_id=f"r{n}")
    return CreatePayment(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        user_id=user,
        amount=Money.of("499.00", "INR"),
        customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone="9876543210"),
        device_fingerprint=device,
        actor=actor,
    )


async def burst(world: World, count: int) -> list[PaymentBlocked | None]:
    """Create ``count`` payments from one IP in order; each outcome is None (created) or the refusal."""
    outcomes: list[PaymentBlocked | None] = []
    for n in range(1, count + 1):
        try:
            await world.service.create(create(n))
        except PaymentBlocked as blocked:
            outcomes.append(blocked)
        else:
            outcomes.append(None)
    return outcomes


@pytest.fixture
def world() -> World:
    return World()


async def test_an_allowed_payment_is_created_with_where_it_came_from_and_its_risk(world):
    payment = await world.service.create(create(1))

    assert payment.status is PaymentState.PENDING
    assert (payment.client_ip, payment.device_fingerprint) == (IP, "dev-1")
    assert (await world.payment("pay_1")).client_ip == IP
    [created] = world.outbox("payment.created", "pay_1")
    assert created["clientIp"] == IP
    assert created["deviceFingerprint"] == "dev-1"
    assert created["risk"] == {
        "verdict": "allow",
        "score": 0,
        "rules": [],
        "subjects": {
            "user": "user-1",
            "ip": IP,
            "device": "dev-1",
            "email": fake_digest("asha@example.com", kind="email"),
            "phone": fake_digest("9876543210", kind="phone"),
        },
    }
    assert "asha" not in str(created).lower()
    assert world.signals("pay_1") == []
    assert world.alerts() == []


async def test_a_burst_from_one_ip_is_allowed_to_its_limit_then_blocked(world):
    outcomes = await burst(world, 5)

    assert [outcome is None for outcome in outcomes] == [True, True, True, False, False]
    for n in (4, 5):
        payment = await world.payment(f"pay_{n}")
        assert payment.status is PaymentState.CANCELLED
        assert payment.failure_reason == BLOCKED_REASON
    assert {order.order_id for order in world.gateway.orders.values()} == {"ord_1", "ord_2", "ord_3"}


async def test_a_blocked_payment_is_refused_with_403_naming_its_rules_and_no_personal_data(world):
    *_, blocked = await burst(world, 4)

    assert isinstance(blocked, PaymentBlocked)
    assert blocked.code == "payment_blocked"
    assert status_for(blocked) == 403
    assert (
        blocked.message
        == "payment pay_4 was blocked by fraud screening (rules: ip_per_minute, ip_per_ten_minutes)"
    )
    assert IP not in blocked.message
    assert "asha" not in blocked.message.lower()


async def test_a_blocked_payment_is_audited_and_announced_as_created_then_cancelled(world):
    await burst(world, 4)

    assert world.audit_actions("pay_4") == ["payment.created", "payment.cancel"]
    [created] = world.outbox("payment.created", "pay_4")
    [cancelled] = world.outbox("payment.cancelled", "pay_4")
    assert created["risk"]["verdict"] == "block"
    assert created["risk"]["score"] == 100
    assert created["risk"]["rules"] == ["ip_per_minute", "ip_per_minute_review", "ip_per_ten_minutes"]
    assert (cancelled["failureReason"], cancelled["clientIp"]) == (BLOCKED_REASON, IP)
    assert world.outbox("payment.processing", "pay_4") == []


async def test_every_fired_rule_of_a_blocked_payment_is_stored_as_a_signal(world):
    await burst(world, 4)

    signals = {s.rule: s for s in world.signals("pay_4")}
    assert set(signals) == {"ip_per_minute", "ip_per_minute_review", "ip_per_ten_minutes"}
    minute = signals["ip_per_minute"]
    assert (minute.verdict, minute.subject_kind, minute.subject) == (Verdict.BLOCK, "ip", IP)
    assert (minute.observed, minute.threshold, minute.window_seconds, minute.created_at) == (4, 3, 60, NOW)
    assert signals["ip_per_minute_review"].verdict is Verdict.REVIEW


async def test_a_burst_raises_one_block_alert_per_cooldown_and_mails_it_once(world):
    await burst(world, 4)
    world.clock.current = NOW + COOLDOWN - timedelta(seconds=1)
    for n in range(5, 8):
        with pytest.raises(PaymentBlocked):
            await world.service.create(create(n))

    blocks = [a for a in world.alerts() if a.kind == "fraud_block"]
    assert len(blocks) == 1
    [alert] = blocks
    assert alert.subject == f"ip:{IP}"
    assert alert.severity.value == "critical"
    assert alert.title == f"Payments from ip {IP} blocked: 4 in 60 s (limit 3)"
    assert alert.details["paymentId"] == "pay_4"
    assert alert.since == NOW - timedelta(seconds=60)
    mailed = [m for m in world.outbox("email.admin.alert") if m["kind"] == "fraud_block"]
    assert [m["alertId"] for m in mailed] == [alert.alert_id]

    world.clock.current = NOW + COOLDOWN
    with pytest.raises(PaymentBlocked):
        await world.service.create(create(8))
    assert len([a for a in world.alerts() if a.kind == "fraud_block"]) == 2


async def test_a_review_lets_the_payment_through_and_warns_admins(world):
    outcomes = await burst(world, 3)

    assert outcomes == [None, None, None]
    payment = await world.payment("pay_3")
    assert payment.status is PaymentState.PENDING
    [signal] = world.signals("pay_3")
    assert (signal.rule, signal.verdict, signal.score) == ("ip_per_minute_review", Verdict.REVIEW, 75)
    [alert] = world.alerts()
    assert (alert.kind, alert.subject, alert.severity.value) == ("fraud_review", f"ip:{IP}", "warning")
    assert world.outbox("payment.created", "pay_3")[0]["risk"]["verdict"] == "review"


async def test_creating_a_blocked_payment_again_is_refused_again_and_changes_nothing(world):
    await burst(world, 4)
    events_before = len(world.store.outbox_events)
    audit_before = len(world.store.audit_rows)

    with pytest.raises(PaymentBlocked, match="ip_per_minute"):
        await world.service.create(create(4))

    assert (await world.payment("pay_4")).status is PaymentState.CANCELLED
    assert len(world.store.outbox_events) == events_before
    assert len(world.store.audit_rows) == audit_before
    observed = await world.tables.record_attempt(
        PaymentAttempt(
            payment_id="pay_4", user_id="user-1", amount=Money.of("499.00", "INR"), at=NOW, ip_address=IP
        )
    )
    assert observed.values["ip_per_minute"] == 4  # the repeat was not counted a second time


async def test_an_allowed_payment_created_again_keeps_its_first_verdict(world):
    await world.service.create(create(1))
    await burst(world, 5)

    again = await world.service.create(create(1))

    assert again.status is PaymentState.PENDING
    assert world.signals("pay_1") == []


async def test_verifying_a_blocked_payment_asks_no_gateway(world):
    await burst(world, 4)
    world.gateway.fail_next = [DependencyUnavailable("the gateway must not be asked")]

    payment = await world.service.verify(VerifyPayment(payment_id="pay_4", actor=create(4).actor))

    assert payment.status is PaymentState.CANCELLED


async def test_concurrent_creates_of_one_blocked_payment_all_refuse_and_record_it_once(world):
    await burst(world, 3)

    results = await asyncio.gather(
        *(world.service.create(create(4)) for _ in range(20)), return_exceptions=True
    )

    assert all(isinstance(r, PaymentBlocked) for r in results)
    assert len(world.outbox("payment.cancelled", "pay_4")) == 1
    assert world.audit_actions("pay_4") == ["payment.created", "payment.cancel"]


async def test_payments_without_an_ip_are_not_counted_per_ip(world):
    outcomes = [None if await world.service.create(create(n, ip=None)) else "?" for n in range(1, 8)]

    assert outcomes == [None] * 7
    assert (await world.payment("pay_7")).client_ip is None
    assert world.outbox("payment.created", "pay_7")[0]["clientIp"] is None


class UnavailableScreen:
    async def assess(self, attempt: PaymentAttempt) -> Assessment:
        raise DependencyUnavailable("redis is down")


async def test_a_screen_that_cannot_answer_records_nothing_so_the_command_is_retried():
    world = World(screen=UnavailableScreen())

    with pytest.raises(DependencyUnavailable):
        await world.service.create(create(1))

    assert world.store.payment_tables.payments == {}
    assert world.store.outbox_events == {}


async def test_a_service_without_a_screen_allows_everything():
    world = World()
    plain = PaymentService(
        unit_of_work=world.store.unit_of_work,
        gateway=world.gateway,
        locks=InMemoryPaymentLocks(),
        clock=world.clock,
    )

    for n in range(1, 8):
        assert (await plain.create(create(n))).status is PaymentState.PENDING
    assert world.outbox("payment.created", "pay_7")[0]["risk"] == {
        "verdict": "allow",
        "score": 0,
        "rules": [],
        "subjects": {},
    }

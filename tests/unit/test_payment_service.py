"""The payment service over behavioural fakes: storage, gateway and locks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.errors import GatewayRejected, NotFound
from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, CreatePayment, VerifyPayment
from payments.domain.payment.decisions import AmountMismatch
from payments.domain.payment.model import CustomerDetails
from payments.domain.payment.service import IdempotencyKeyReused, PaymentService, gateway_customer_id
from payments.domain.payment.states import PaymentState
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.storage import InMemoryStore

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
OWNER = Actor(
    actor_id="user-1", ip_address="203.0.113.9", user_agent="pytest", trace_id="a" * 32, request_id="r1"
)
STRANGER = Actor(actor_id="user-2", trace_id="b" * 32, request_id="r2")
ADMIN = Actor(actor_id="admin-1", trace_id="c" * 32, request_id="r3", is_admin=True)


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.clock = FixedClock(NOW)
        self.gateway = InMemoryGateway(now=NOW)
        self.locks = InMemoryPaymentLocks()
        self.service = PaymentService(
            unit_of_work=self.store.unit_of_work, gateway=self.gateway, locks=self.locks, clock=self.clock
        )

    def events(self, payment_id: str) -> list[str]:
        return [
            e.routing_key
            for e in self.store.outbox_events.values()
            if e.payload.get("paymentId") == payment_id
        ]

    def audit_actions(self, payment_id: str) -> list[str]:
        return [row.entry.action for row in self.store.audit_rows if row.entry.resource_id == payment_id]


def create_command(n: int = 1, *, amount: str = "499.00", phone: str = "9876543210") -> CreatePayment:
    return CreatePayment(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        user_id="user-1",
        amount=Money.of(amount, "INR"),
        customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone=phone),
        description="CommDesk Pro",
        notify_url="http://127.0.0.1:8080/api/v1/webhooks/cashfree",
        actor=OWNER,
    )


@pytest.fixture
def world() -> World:
    return World()


async def test_create_records_the_payment_and_opens_its_gateway_order(world):
    payment = await world.service.create(create_command())

    assert payment.status is PaymentState.PENDING
    assert payment.session_id == "session_ord_1"
    assert payment.gateway_order_id is not None
    assert payment.order_expires_at == NOW + timedelta(days=30)
    assert world.events("pay_1") == ["payment.created", "analytics.payment.created"]
    assert world.audit_actions("pay_1") == ["payment.created", "payment.open"]
    [audit] = [r.entry for r in world.store.audit_rows if r.entry.action == "payment.created"]
    assert (audit.actor_id, audit.ip_address, audit.trace_id) == ("user-1", "203.0.113.9", "a" * 32)


async def test_creating_again_returns_the_same_payment_and_opens_no_second_order(world):
    first = await world.service.create(create_command())
    second = await world.service.create(create_command())

    assert second == first
    assert len(world.gateway.orders) == 1
    assert world.events("pay_1") == ["payment.created", "analytics.payment.created"]


async def test_concurrent_creates_make_one_payment_and_one_gateway_order(world):
    results = await asyncio.gather(*(world.service.create(create_command()) for _ in range(50)))

    assert {r.payment_id for r in results} == {"pay_1"}
    assert {r.status for r in results} == {PaymentState.PENDING}
    assert len(world.gateway.orders) == 1
    assert world.events("pay_1").count("payment.created") == 1


async def test_a_create_the_gateway_rejects_is_cancelled_with_the_reason(world):
    world.gateway.reject_phone = "0000000000"

    with pytest.raises(GatewayRejected):
        await world.service.create(create_command(phone="0000000000"))

    async with world.store.unit_of_work() as uow:
        payment = await uow.payments.get("pay_1")
    assert payment.status is PaymentState.CANCELLED
    assert "customer_phone_invalid" in (payment.failure_reason or "")
    assert world.events("pay_1")[-1] == "payment.cancelled"


async def test_verify_moves_a_payment_through_a_failed_attempt_to_success(world):
    payment = await world.service.create(create_command())
    world.gateway.attempt("ord_1", AttemptStatus.FAILED)

    failed = await world.service.verify(VerifyPayment(payment_id=payment.payment_id, actor=OWNER))
    assert failed.status is PaymentState.FAILED
    assert failed.failure_reason == "auth_declined"

    success = world.gateway.attempt("ord_1", AttemptStatus.SUCCESS)
    paid = await world.service.verify(VerifyPayment(order_id="ord_1", actor=OWNER))

    assert paid.status is PaymentState.SUCCESS
    assert paid.gateway_payment_id == success.attempt_id
    assert paid.failure_reason is None
    assert world.events("pay_1")[2:] == [
        "payment.failed",
        "analytics.payment.failed",
        "email.payment.failed",
        "payment.success",
        "analytics.payment.success",
    ]
    async with world.store.unit_of_work() as uow:
        attempts = await uow.payments.attempts("pay_1")
    assert [a.status for a in attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCESS]


async def test_a_pending_attempt_shows_the_payment_as_processing(world):
    await world.service.create(create_command())
    world.gateway.attempt("ord_1", AttemptStatus.PENDING)

    payment = await world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER))

    assert payment.status is PaymentState.PROCESSING
    assert world.events("pay_1")[-1] == "payment.processing"


async def test_many_concurrent_verifies_make_one_transition(world):
    await world.service.create(create_command())
    world.gateway.attempt("ord_1", AttemptStatus.SUCCESS)

    results = await asyncio.gather(
        *(world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER)) for _ in range(100))
    )

    assert {r.status for r in results} == {PaymentState.SUCCESS}
    assert world.events("pay_1").count("payment.success") == 1
    assert world.audit_actions("pay_1").count("payment.succeed") == 1


async def test_a_gateway_amount_that_differs_is_refused_audited_and_alerted(world):
    await world.service.create(create_command())
    world.gateway.attempt("ord_1", AttemptStatus.SUCCESS)
    world.gateway.tamper_amount("ord_1", Money.of("4.99", "INR"))

    with pytest.raises(AmountMismatch):
        await world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER))

    async with world.store.unit_of_work() as uow:
        assert (await uow.payments.get("pay_1")).status is PaymentState.PENDING
    assert "payment.verify_mismatch" in world.audit_actions("pay_1")
    [alert] = [e for e in world.store.outbox_events.values() if e.routing_key == "email.admin.alert"]
    assert alert.payload["kind"] == "payment_amount_mismatch"
    assert alert.payload["subject"] == "payment:pay_1"
    assert alert.payload["details"]["gatewayAmount"] == "4.99"
    assert alert.payload["details"]["ourAmount"] == "499.00"


async def test_a_gateway_currency_that_differs_is_refused(world):
    await world.service.create(create_command())
    world.gateway.tamper_amount("ord_1", Money.of("499.00", "USD"))

    with pytest.raises(AmountMismatch):
        await world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER))


async def test_another_users_payment_does_not_exist_for_them_but_does_for_an_admin(world):
    await world.service.create(create_command())

    with pytest.raises(NotFound):
        await world.service.verify(VerifyPayment(payment_id="pay_1", actor=STRANGER))
    assert (await world.service.find(ADMIN, payment_id="pay_1")).payment_id == "pay_1"


async def test_the_expiry_job_expires_unpaid_orders_but_a_late_success_wins(world):
    await world.service.create(create_command(1))
    await world.service.create(create_command(2))
    world.gateway.expire("ord_1")
    world.gateway.attempt("ord_2", AttemptStatus.SUCCESS)
    world.clock.current = NOW + timedelta(days=31)

    expired = await world.service.expire_due(limit=10)

    assert expired == 1
    async with world.store.unit_of_work() as uow:
        assert (await uow.payments.get("pay_1")).status is PaymentState.EXPIRED
        assert (await uow.payments.get("pay_2")).status is PaymentState.SUCCESS
    assert world.events("pay_1")[-1] == "payment.cancelled"
    [cancelled] = [e for e in world.store.outbox_events.values() if e.routing_key == "payment.cancelled"]
    assert cancelled.payload["reason"] == "expired"


async def test_a_success_after_expiry_still_wins(world):
    await world.service.create(create_command())
    world.gateway.expire("ord_1")
    world.clock.current = NOW + timedelta(days=31)
    await world.service.expire_due(limit=10)
    async with world.store.unit_of_work() as uow:
        assert (await uow.payments.get("pay_1")).status is PaymentState.EXPIRED
    # The attempt was already in flight when the order expired; the gateway accepts it (FACTS §2).
    world.gateway.orders["ord_1"] = world.gateway.orders["ord_1"].__class__(
        **{
            **world.gateway.orders["ord_1"].__dict__,
            "status": world.gateway.orders["ord_1"].status.__class__("ACTIVE"),
        }
    )
    world.gateway.attempt("ord_1", AttemptStatus.SUCCESS)

    payment = await world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER))

    assert payment.status is PaymentState.SUCCESS


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [("user-1", "user-1"), ("u", None), ("someone@example.com", None), ("x" * 60, None)],
)
def test_gateway_customer_ids_are_short_safe_and_stable(user_id, expected):
    customer_id = gateway_customer_id(user_id)

    assert customer_id == (expected or customer_id)
    assert 3 <= len(customer_id) <= 50
    assert customer_id.replace("_", "").replace("-", "").isalnum()
    assert gateway_customer_id(user_id) == customer_id


async def test_a_key_reused_for_another_request_is_refused_rather_than_answered_with_the_old_payment(world):
    first = replace(create_command(), request_hash="hash-of-the-first-body")
    await world.service.create(first)
    other = replace(first, amount=Money.of("1000.00", "INR"), request_hash="another-body")

    with pytest.raises(IdempotencyKeyReused):
        await world.service.create(other)
    assert (await world.service.create(first)).amount == Money.of("499.00", "INR")

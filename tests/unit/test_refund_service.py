"""The refund engine over behavioural fakes: never more than was captured, once per refund id."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from payments.domain.errors import DependencyUnavailable, NotFound
from payments.domain.gateway import AttemptStatus, GatewayRefundStatus
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, VerifyPayment
from payments.domain.payment.states import PaymentState
from payments.domain.refund.commands import RequestRefund
from payments.domain.refund.service import (
    PaymentNotRefundable,
    RefundExceedsBalance,
    RefundIdReused,
    RefundService,
    RefundWindowClosed,
)
from payments.domain.refund.states import RefundState
from tests.unit.test_payment_service import OWNER, STRANGER, World, create_command

ADMIN = Actor(actor_id="ops", trace_id="d" * 32, request_id="r9", is_admin=True)


class RefundWorld(World):
    def __init__(self) -> None:
        super().__init__()
        self.refunds = RefundService(
            unit_of_work=self.store.unit_of_work, gateway=self.gateway, locks=self.locks, clock=self.clock
        )

    async def paid_payment(self, amount: str = "499.00") -> str:
        payment = await self.service.create(create_command(amount=amount))
        self.gateway.attempt(payment.order_id, AttemptStatus.SUCCESS)
        await self.service.verify(VerifyPayment(payment_id=payment.payment_id, actor=OWNER))
        return payment.payment_id

    def ask(
        self, refund_id: str, amount: str, payment_id: str = "pay_1", actor: Actor = OWNER
    ) -> RequestRefund:
        return RequestRefund(
            refund_id=refund_id,
            payment_id=payment_id,
            amount=Money.of(amount, "INR"),
            reason="customer asked",
            actor=actor,
        )

    async def payment_status(self) -> PaymentState:
        async with self.store.unit_of_work() as uow:
            return (await uow.payments.get("pay_1")).status

    def routing_keys(self) -> list[str]:
        return [event.routing_key for event in self.store.outbox_events.values()]


@pytest.fixture
def world() -> RefundWorld:
    return RefundWorld()


async def test_a_partial_refund_goes_to_the_gateway_and_succeeds_by_its_webhook(world):
    await world.paid_payment()

    refund = await world.refunds.request(world.ask("rf_1", "100.00"))

    assert refund.status is RefundState.PROCESSING
    assert refund.gateway_refund_id is not None
    answer = world.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.SUCCESS)
    done = await world.refunds.apply_gateway_status(refund, answer, ADMIN)
    assert done.status is RefundState.SUCCESS
    assert await world.payment_status() is PaymentState.PARTIALLY_REFUNDED
    assert {"analytics.refund.created", "email.payment.refund", "payment.refunded"} <= set(
        world.routing_keys()
    )


async def test_refunds_adding_up_to_the_captured_amount_make_the_payment_refunded(world):
    await world.paid_payment()
    world.gateway.refund_outcome = GatewayRefundStatus.SUCCESS

    await world.refunds.request(world.ask("rf_1", "400.00"))
    await world.refunds.request(world.ask("rf_2", "99.00"))

    assert await world.payment_status() is PaymentState.REFUNDED


async def test_a_refund_beyond_the_balance_is_refused_and_nothing_is_written(world):
    await world.paid_payment()
    await world.refunds.request(world.ask("rf_1", "400.00"))

    with pytest.raises(RefundExceedsBalance):
        await world.refunds.request(world.ask("rf_2", "100.00"))

    async with world.store.unit_of_work() as uow:
        assert [r.refund_id for r in await uow.refunds.for_payment("pay_1")] == ["rf_1"]


async def test_fifty_concurrent_partial_refunds_never_exceed_the_captured_amount(world):
    await world.paid_payment("499.00")

    results = await asyncio.gather(
        *(world.refunds.request(world.ask(f"rf_{n}", "25.00")) for n in range(50)), return_exceptions=True
    )

    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 19  # 19 x 25.00 = 475.00; a 20th would be 500.00 > 499.00
    assert all(isinstance(error, RefundExceedsBalance) for error in refused)
    async with world.store.unit_of_work() as uow:
        held = [r for r in await uow.refunds.for_payment("pay_1") if r.status is not RefundState.FAILED]
    assert sum(r.amount.amount for r in held) <= 499


async def test_the_same_refund_id_makes_one_refund_at_the_gateway_and_in_the_database(world):
    await world.paid_payment()

    first, again = await asyncio.gather(
        world.refunds.request(world.ask("rf_1", "100.00")), world.refunds.request(world.ask("rf_1", "100.00"))
    )

    assert first.refund_id == again.refund_id
    assert len(world.gateway.refunds) == 1
    with pytest.raises(RefundIdReused):
        await world.refunds.request(world.ask("rf_1", "50.00"))


async def test_a_transient_gateway_failure_leaves_the_refund_initiated_and_a_retry_finishes_it(world):
    await world.paid_payment()
    world.gateway.fail_next = [DependencyUnavailable("gateway down")]

    with pytest.raises(DependencyUnavailable):
        await world.refunds.request(world.ask("rf_1", "100.00"))
    retried = await world.refunds.request(world.ask("rf_1", "100.00"))

    assert retried.status is RefundState.PROCESSING
    assert len(world.gateway.refunds) == 1


async def test_a_refund_the_gateway_cancels_frees_its_amount_again(world):
    await world.paid_payment()
    refund = await world.refunds.request(world.ask("rf_1", "499.00"))

    cancelled = world.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.CANCELLED)
    failed = await world.refunds.apply_gateway_status(refund, cancelled, ADMIN)
    again = await world.refunds.request(world.ask("rf_2", "499.00"))

    assert failed.status is RefundState.FAILED
    assert again.status is RefundState.PROCESSING


async def test_webhooks_out_of_order_and_repeated_leave_the_right_final_state(world):
    await world.paid_payment()
    refund = await world.refunds.request(world.ask("rf_1", "100.00"))
    success = world.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.SUCCESS)
    pending = success.__class__(**{**success.__dict__, "status": GatewayRefundStatus.PENDING})

    for answer in (success, pending, success, pending):
        refund = await world.refunds.apply_gateway_status(refund, answer, ADMIN)

    assert refund.status is RefundState.SUCCESS
    assert world.routing_keys().count("payment.refunded") == 1


async def test_a_refund_is_refused_on_an_unpaid_payment(world):
    await world.service.create(create_command())

    with pytest.raises(PaymentNotRefundable):
        await world.refunds.request(world.ask("rf_1", "10.00"))


async def test_another_users_payment_cannot_be_refunded_by_them(world):
    await world.paid_payment()

    with pytest.raises(NotFound):
        await world.refunds.request(world.ask("rf_1", "10.00", actor=STRANGER))


async def test_a_payment_past_the_refund_window_cannot_be_refunded(world):
    await world.paid_payment()
    world.clock.current = world.clock.current + timedelta(days=200)

    with pytest.raises(RefundWindowClosed):
        await world.refunds.request(world.ask("rf_1", "10.00"))


async def test_a_refund_the_bank_reverses_gives_its_amount_back_to_the_balance(world):
    await world.paid_payment()
    world.gateway.refund_outcome = GatewayRefundStatus.SUCCESS
    await world.refunds.request(world.ask("rf_1", "499.00"))

    reversed_refund = await world.refunds.reverse("rf_1", ADMIN, reason="REFUND_REVERSAL in the recon report")
    again = await world.refunds.request(world.ask("rf_2", "499.00"))

    assert reversed_refund.status is RefundState.REVERSED
    assert reversed_refund.status_description == "REFUND_REVERSAL in the recon report"
    # Our balance let the new refund through (no RefundExceedsBalance); whether the gateway accepts a
    # second refund after a reversal is its own rule (this fake still counts the reversed one).
    assert again.refund_id == "rf_2"

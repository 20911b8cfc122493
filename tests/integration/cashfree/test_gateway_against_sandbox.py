"""CashfreeGateway, the domain's PaymentGateway, end to end against the sandbox: domain types in and out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payments.bridges.cashfree.errors import InvalidGatewayRequest
from payments.bridges.cashfree.gateway import CashfreeGateway
from payments.domain.errors import GatewayConflict
from payments.domain.gateway import (
    AttemptStatus,
    Customer,
    GatewayOrderStatus,
    GatewayRefundStatus,
    OrderRequest,
    PaymentGateway,
    RefundRequest,
)
from payments.domain.money import Money
from tests.integration.cashfree.flows import FAILS, SUCCEEDS, new_order_id, order_in_status, pay

CUSTOMER = Customer(customer_id="cust_42", phone="9876543210", email="asha@example.com", name="Asha K")


@pytest.fixture
def gateway(client) -> PaymentGateway:
    return CashfreeGateway(client)


def order(amount: str = "199.99", **changes) -> OrderRequest:
    fields = {"order_id": new_order_id(), "amount": Money.of(amount, "INR"), "customer": CUSTOMER}
    return OrderRequest(**(fields | changes))


async def paid(gateway, client, amount: str = "199.99") -> str:
    opened = await gateway.create_order(order(amount))
    await pay(client, await client.get_order(opened.order_id), SUCCEEDS)
    await order_in_status(client, opened.order_id, "PAID")
    return opened.order_id


async def test_an_order_opens_with_money_a_session_and_aware_times(gateway):
    request = order("199.99", note="three seats", tags={"plan": "pro"}, return_url="https://app.example/back")

    opened = await gateway.create_order(request)

    assert opened.order_id == request.order_id
    assert opened.amount == Money.of("199.99", "INR")
    assert opened.status is GatewayOrderStatus.ACTIVE
    assert opened.session_id
    assert opened.created_at is not None
    assert opened.created_at.tzinfo is not None


async def test_opening_the_same_order_again_returns_it_and_another_amount_conflicts(gateway):
    request = order("50.00")
    first = await gateway.create_order(request)

    again = await gateway.create_order(request)
    with pytest.raises(GatewayConflict):
        await gateway.create_order(order("60.00", order_id=request.order_id))

    assert again.gateway_order_id == first.gateway_order_id


async def test_a_paid_order_shows_paid_with_its_successful_attempt(gateway, client):
    order_id = await paid(gateway, client)

    current = await gateway.get_order(order_id)
    attempts = await gateway.list_attempts(order_id)
    attempt = await gateway.get_attempt(order_id, attempts[0].attempt_id)

    assert current.status is GatewayOrderStatus.PAID
    assert [a.status for a in attempts] == [AttemptStatus.SUCCESS]
    assert attempt.amount == Money.of("199.99", "INR")
    assert attempt.method == "upi"
    assert attempt.raw["cf_payment_id"] == attempt.attempt_id


async def test_a_failed_attempt_carries_its_error(gateway, client):
    opened = await gateway.create_order(order())
    await pay(client, await client.get_order(opened.order_id), FAILS)

    (attempt,) = await gateway.list_attempts(opened.order_id)

    assert attempt.status is AttemptStatus.FAILED
    assert attempt.error_code


async def test_an_unpaid_order_is_terminated(gateway):
    opened = await gateway.create_order(order())

    closed = await gateway.terminate_order(opened.order_id)

    assert closed.status in {GatewayOrderStatus.TERMINATED, GatewayOrderStatus.TERMINATION_REQUESTED}


async def test_a_refund_is_asked_for_and_read_back_in_domain_terms(gateway, client):
    order_id = await paid(gateway, client)
    request = RefundRequest(
        order_id=order_id, refund_id="refund_1", amount=Money.of("20", "INR"), note="one seat"
    )

    created = await gateway.create_refund(request)
    again = await gateway.create_refund(request)
    listed = await gateway.list_refunds(order_id)
    fetched = await gateway.get_refund(order_id, "refund_1")

    assert created.amount == Money.of("20.00", "INR")
    assert created.status in {GatewayRefundStatus.PENDING, GatewayRefundStatus.SUCCESS}
    assert again.gateway_refund_id == created.gateway_refund_id
    assert [r.refund_id for r in listed] == ["refund_1"]
    assert (fetched.order_id, fetched.attempt_id) == (order_id, created.attempt_id)


async def test_settlements_and_reports_come_back_as_domain_entries(gateway, client, sandbox):
    order_id = await paid(gateway, client, amount="100.00")
    before = await gateway.settlements_for_order(order_id)
    await sandbox.post("/_sandbox/settle", {"order_id": order_id})
    now = datetime.now(UTC)
    start, end = now - timedelta(days=1), now + timedelta(days=1)

    (settlement,) = await gateway.settlements_for_order(order_id)
    in_range = await gateway.settlements(start, end)
    report = await gateway.reconciliation(start, end)
    by_settlement = await gateway.settlement_reconciliation(start, end)

    assert before == []
    assert settlement.order_amount == Money.of("100.00", "INR")
    assert (
        settlement.settlement_amount
        == settlement.order_amount - settlement.service_charge - settlement.service_tax
    )
    assert settlement.utr
    assert [s.settlement_id for s in in_range] == [settlement.settlement_id]
    payment = next(e for e in report if e.event_type == "PAYMENT" and e.order_id == order_id)
    assert payment.amount == Money.of("100.00", "INR")
    assert any(e.order_id == order_id and e.settlement_id == settlement.settlement_id for e in by_settlement)


async def test_an_order_cashfree_would_refuse_is_never_sent(gateway, sent):
    too_long_note = "x" * 201

    with pytest.raises(InvalidGatewayRequest, match="order_note"):
        await gateway.create_order(order(note=too_long_note))

    assert sent == []

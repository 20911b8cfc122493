"""Every client operation, end to end over HTTP against the local Cashfree sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.bridges.cashfree.client import idempotency_key
from payments.bridges.cashfree.models import CreateRefundRequest
from payments.domain.errors import GatewayRejected, NotFound
from tests.cashfree_spec import contract_problems
from tests.integration.cashfree.flows import FAILS, SUCCEEDS, order_in_status, order_request, paid_order, pay


def around_now() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(days=1), now + timedelta(days=1)


async def test_an_order_is_created_and_read_back_with_exact_amounts(client):
    created = await client.create_order(order_request(amount="100.50"))

    fetched = await client.get_order(created.order_id)

    assert created.order_status == "ACTIVE"
    assert created.cf_order_id
    assert created.payment_session_id
    assert fetched.order_amount == Decimal("100.50")
    assert fetched.order_currency == "INR"
    assert fetched.cf_order_id == created.cf_order_id


async def test_paying_with_the_succeeding_upi_id_makes_the_order_paid(client):
    order = await client.create_order(order_request())

    started = await pay(client, order, SUCCEEDS)
    paid = await order_in_status(client, order.order_id, "PAID")
    attempts = await client.list_payments(order.order_id)
    attempt = await client.get_payment(order.order_id, started.cf_payment_id)

    assert started.cf_payment_id
    assert paid.order_status == "PAID"
    assert [a.payment_status for a in attempts] == ["SUCCESS"]
    assert attempt.cf_payment_id == started.cf_payment_id
    assert attempt.payment_amount == Decimal("100.50")


async def test_paying_with_the_failing_upi_id_leaves_a_failed_attempt_on_an_active_order(client):
    order = await client.create_order(order_request())

    started = await pay(client, order, FAILS)

    attempt = await client.get_payment(order.order_id, started.cf_payment_id)
    assert attempt.payment_status == "FAILED"
    assert attempt.error_details is not None
    assert attempt.error_details.error_code
    assert (await client.get_order(order.order_id)).order_status == "ACTIVE"


async def test_an_unpaid_order_can_be_terminated(client):
    order = await client.create_order(order_request())

    terminated = await client.terminate_order(order.order_id)

    assert terminated.order_status in {"TERMINATED", "TERMINATION_REQUESTED"}


async def test_a_refund_is_created_listed_and_read_back(client, sent):
    order = await paid_order(client, amount="100.00")
    request = CreateRefundRequest(
        refund_id="refund_1", refund_amount=Decimal("40.5"), refund_note="partial refund"
    )

    created = await client.create_refund(order.order_id, request)
    listed = await client.list_refunds(order.order_id)
    fetched = await client.get_refund(order.order_id, "refund_1")

    assert created.refund_amount == Decimal("40.50")
    assert created.cf_refund_id
    assert [r.refund_id for r in listed] == ["refund_1"]
    assert fetched.refund_status in {"PENDING", "SUCCESS"}
    write = next(r for r in sent if r.path_template == "/orders/{order_id}/refunds" and r.method == "POST")
    assert b'"refund_amount":40.50' in (write.body or b"")
    assert write.headers["x-idempotency-key"] == idempotency_key(f"refund:{order.order_id}:refund_1")


async def test_a_refund_above_the_paid_amount_is_rejected_with_cashfree_code(client):
    order = await paid_order(client, amount="10.00")

    with pytest.raises(GatewayRejected) as caught:
        await client.create_refund(
            order.order_id, CreateRefundRequest(refund_id="too_much", refund_amount=Decimal(11))
        )

    assert caught.value.gateway_code


async def test_an_unknown_order_is_not_found(client):
    with pytest.raises(NotFound):
        await client.get_order("order_that_never_was")


async def test_settlements_of_settled_orders_are_read_page_by_page(client, sandbox, sent):
    orders = [await paid_order(client) for _ in range(3)]
    for order in orders:
        await sandbox.post("/_sandbox/settle", {"order_id": order.order_id})
    start, end = around_now()

    settlements = await client.settlements(start, end, page_size=1)
    of_one = await client.order_settlements(orders[0].order_id)

    assert {s.order_id for s in settlements} == {o.order_id for o in orders}
    assert all(s.settlement_amount is not None and s.settlement_amount < s.order_amount for s in settlements)
    assert [s.order_id for s in of_one] == [orders[0].order_id]
    pages = [r for r in sent if r.path_template == "/settlements"]
    assert len(pages) >= 3
    assert b'"cursor"' not in (pages[0].body or b"")
    assert all(b'"cursor"' in (page.body or b"") for page in pages[1:])


async def test_an_order_not_yet_settled_has_no_settlement(client):
    order = await paid_order(client)

    with pytest.raises(NotFound):
        await client.order_settlements(order.order_id)


async def test_the_payment_reconciliation_report_is_followed_to_its_last_page(client, sandbox):
    orders = [await paid_order(client) for _ in range(3)]
    await sandbox.post("/_sandbox/settle", {"order_id": orders[0].order_id})
    start, end = around_now()

    rows = await client.pg_reconciliation(start, end, page_size=2)

    payments = {row.order_id for row in rows if row.event_type == "PAYMENT"}
    assert {o.order_id for o in orders} <= payments
    assert len({row.event_id for row in rows}) == len(rows)


async def test_the_settlement_reconciliation_report_is_followed_to_its_last_page(client, sandbox):
    orders = [await paid_order(client) for _ in range(3)]
    for order in orders:
        await sandbox.post("/_sandbox/settle", {"order_id": order.order_id})
    start, end = around_now()

    rows = await client.settlement_reconciliation(start, end, page_size=1)

    settled = {row.order_details.order_id for row in rows if row.order_details is not None}
    assert {o.order_id for o in orders} <= settled
    assert all(row.settlement_details and row.settlement_details.cf_settlement_id for row in rows)


async def test_every_request_the_client_sent_matches_cashfree_spec(client, sandbox, sent):
    order = await paid_order(client)
    await client.create_refund(
        order.order_id, CreateRefundRequest(refund_id="refund_1", refund_amount=Decimal(1))
    )
    await client.list_refunds(order.order_id)
    await sandbox.post("/_sandbox/settle", {"order_id": order.order_id})
    start, end = around_now()
    await client.settlements(start, end)
    await client.pg_reconciliation(start, end)
    await client.settlement_reconciliation(start, end)
    await client.terminate_order((await client.create_order(order_request())).order_id)

    assert {r.path_template for r in sent} >= {"/orders", "/orders/sessions", "/recon", "/settlement/recon"}
    assert {(r.method, r.path_template): contract_problems(r) for r in sent if contract_problems(r)} == {}

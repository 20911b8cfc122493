"""Refunds through the whole product and the sandbox: API -> refunds agent -> Cashfree -> its webhook."""

from __future__ import annotations

import uuid

from tests.waiting import eventually

USER = "user-refunds"


async def refund_status(stack, refund_id: str) -> str:
    rows = await stack.rows("SELECT status FROM refunds WHERE refund_id = $1", refund_id)
    return rows[0]["status"] if rows else ""


async def payment_status(stack, payment_id: str) -> str:
    [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment_id)
    return row["status"]


async def test_a_full_refund_ends_in_success_by_cashfrees_webhook_and_refunds_the_payment(stack):
    payment = await stack.paid(USER)

    response = await stack.refund(USER, payment["paymentId"], "499.00")

    assert response.status == 201, await response.text()
    refund = await response.json()
    assert refund["status"] == "PROCESSING"
    await stack.advance_sandbox_clock(61)  # the sandbox settles the refund and sends REFUND_STATUS_WEBHOOK
    await eventually(lambda: _is_refund(stack, refund["refundId"], "SUCCESS"), timeout=30, what="the refund")
    await eventually(
        lambda: _is_payment(stack, payment["paymentId"], "REFUNDED"), timeout=30, what="the payment"
    )


async def test_two_partial_refunds_then_an_over_refund_is_refused(stack):
    payment = await stack.paid(USER)

    first = await stack.refund(USER, payment["paymentId"], "100.00")
    second = await stack.refund(USER, payment["paymentId"], "150.00")
    too_much = await stack.refund(USER, payment["paymentId"], "249.01")

    assert (first.status, second.status) == (201, 201)
    assert too_much.status == 400
    assert (await too_much.json())["error"]["code"] == "refund_exceeds_balance"
    await stack.advance_sandbox_clock(61)
    for refund in (await first.json(), await second.json()):
        await eventually(
            lambda r=refund: _is_refund(stack, r["refundId"], "SUCCESS"),
            timeout=30,
            what="each partial refund",
        )
    assert await payment_status(stack, payment["paymentId"]) == "PARTIALLY_REFUNDED"
    listing = await stack.api.get(
        f"/api/v1/refunds/payment/{payment['paymentId']}", headers=stack.headers(USER)
    )
    body = await listing.json()
    assert body["refundableAmount"] == "249.00"
    assert body["refundedAmount"] == "250.00"


async def test_the_same_initiate_twice_makes_one_refund(stack):
    payment = await stack.paid(USER)
    key = uuid.uuid4().hex

    first = await stack.refund(USER, payment["paymentId"], "10.00", key=key)
    again = await stack.refund(USER, payment["paymentId"], "10.00", key=key)

    assert (first.status, again.status) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    rows = await stack.rows("SELECT refund_id FROM refunds WHERE payment_id = $1", payment["paymentId"])
    assert len(rows) == 1
    assert len([r for r in stack.sandbox.ledger.refunds if r[0] == payment["orderId"]]) == 1


async def test_refund_webhooks_duplicated_and_out_of_order_leave_the_right_final_state(stack):
    await stack.put_faults({"duplicate_webhooks": True, "reorder_webhooks": True})
    payment = await stack.paid(USER)
    refunds = [
        await (await stack.refund(USER, payment["paymentId"], amount)).json() for amount in ("50.00", "60.00")
    ]

    await stack.advance_sandbox_clock(61)

    for refund in refunds:
        await eventually(
            lambda r=refund: _is_refund(stack, r["refundId"], "SUCCESS"), timeout=30, what="a refund"
        )
    await eventually(
        lambda: _is_payment(stack, payment["paymentId"], "PARTIALLY_REFUNDED"), timeout=30, what="the payment"
    )
    events = await stack.rows(
        "SELECT count(*) AS n FROM outbox "
        "WHERE routing_key = 'payment.refunded' AND payload->>'paymentId' = $1",
        payment["paymentId"],
    )
    assert events[0]["n"] == 2, "one payment.refunded per refund that succeeded"


async def test_a_refund_on_an_unpaid_or_foreign_payment_is_refused(stack):
    unpaid = await (await stack.create(USER)).json()
    paid = await stack.paid(USER)

    on_unpaid = await stack.refund(USER, unpaid["paymentId"], "10.00")
    by_stranger = await stack.refund("someone-else", paid["paymentId"], "10.00")

    assert on_unpaid.status == 409
    assert (await on_unpaid.json())["error"]["code"] == "payment_not_refundable"
    assert by_stranger.status == 404


async def _is_refund(stack, refund_id: str, status: str) -> bool:
    return await refund_status(stack, refund_id) == status


async def _is_payment(stack, payment_id: str, status: str) -> bool:
    return await payment_status(stack, payment_id) == status

"""Refunds: only on PAID orders, never beyond the paid amount, outcome by ``refund_note``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.sandbox.support import CREDENTIALS, Pg
from tests.waiting import eventually


async def post_refund(pg: Pg, order_id: str, body: dict[str, Any]):
    return await pg.client.post(f"/pg/orders/{order_id}/refunds", json=body, headers=CREDENTIALS)


async def test_a_refund_on_an_unpaid_order_is_refused(pg: Pg):
    order = await pg.create_order()

    response = await post_refund(pg, order["order_id"], {"refund_id": "refund-1", "refund_amount": 1})

    assert response.status == 400
    assert (await response.json())["code"] == "order_not_paid"


async def test_a_partial_then_the_remaining_refund_are_both_accepted(pg: Pg):
    order = await pg.paid_order("100.00")

    partial = await pg.refund(order["order_id"], "refund-1", "40.00")
    rest = await pg.refund(order["order_id"], "refund-2", "60.00")
    listed = await pg.call("GET", f"/orders/{order['order_id']}/refunds")

    assert [str(r["refund_amount"]) for r in (partial, rest)] == ["40.00", "60.00"]
    assert [r["refund_id"] for r in listed] == ["refund-1", "refund-2"]
    assert partial["entity"] == "refund"
    assert partial["cf_refund_id"].isdigit()
    assert partial["refund_status"] == "PENDING"


async def test_refunds_can_never_exceed_the_paid_amount(pg: Pg):
    order = await pg.paid_order("100.00")
    await pg.refund(order["order_id"], "refund-1", "70.00")

    response = await post_refund(pg, order["order_id"], {"refund_id": "refund-2", "refund_amount": 30.01})

    assert response.status == 400
    answer = await response.json()
    assert answer["code"] == "refund_amount_invalid"
    assert "30.00" in answer["message"]


async def test_a_cancelled_refund_frees_its_amount(pg: Pg):
    order = await pg.paid_order("100.00")
    failed = await pg.refund(order["order_id"], "refund-1", "100.00", refund_note="FAILED")

    again = await pg.refund(order["order_id"], "refund-2", "100.00")

    assert failed["refund_status"] == "CANCELLED"
    assert again["refund_status"] == "PENDING"


async def test_a_duplicate_refund_id_on_the_order_answers_409(pg: Pg):
    order = await pg.paid_order("100.00")
    await pg.refund(order["order_id"], "refund-1", "10.00")

    response = await post_refund(pg, order["order_id"], {"refund_id": "refund-1", "refund_amount": 10})

    assert response.status == 409
    assert (await response.json())["code"] == "refund_already_exists"


@pytest.mark.parametrize(
    ("note", "status"),
    [("SUCCESS", "SUCCESS"), ("FAILED", "CANCELLED"), ("PENDING", "PENDING"), ("ACTIVE", "PENDING")],
)
async def test_the_sandbox_refund_note_decides_the_outcome(pg: Pg, note, status):
    order = await pg.paid_order()

    created = await pg.refund(order["order_id"], "refund-1", "5.00", refund_note=note)
    await pg.advance(3600)
    fetched = await pg.call("GET", f"/orders/{order['order_id']}/refunds/refund-1")

    assert created["refund_status"] == fetched["refund_status"] == status


async def test_the_notes_are_case_sensitive(pg: Pg):
    order = await pg.paid_order()

    created = await pg.refund(order["order_id"], "refund-1", "5.00", refund_note="success")

    assert created["refund_status"] == "PENDING"


async def test_an_ordinary_refund_succeeds_a_minute_later_on_the_sandbox_clock(pg: Pg):
    order = await pg.paid_order()
    await pg.refund(order["order_id"], "refund-1", "5.00", refund_note="customer asked")

    await pg.advance(59)
    early = await pg.call("GET", f"/orders/{order['order_id']}/refunds/refund-1")
    await pg.advance(2)
    later = await pg.call("GET", f"/orders/{order['order_id']}/refunds/refund-1")

    assert early["refund_status"] == "PENDING"
    assert later["refund_status"] == "SUCCESS"
    assert later["refund_arn"].isdigit()
    assert "processed_at" in later


async def test_a_refund_success_sends_a_refund_status_webhook(pg: Pg, receiver):
    order = await pg.paid_order()

    await pg.refund(order["order_id"], "refund-1", "5.00", refund_note="SUCCESS", refund_speed="INSTANT")

    def refund_hooks():
        return [d.payload for d in receiver.received if d.payload["type"] == "REFUND_STATUS_WEBHOOK"]

    hooks = await eventually(refund_hooks, what="the refund webhook")
    refund = hooks[0]["data"]["refund"]
    assert refund["refund_status"] == "SUCCESS"
    assert refund["refund_id"] == "refund-1"
    assert refund["entity"] == "Refund"
    assert refund["refund_mode"] == "INSTANT"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"refund_amount": 1}, "refund_id_missing"),
        ({"refund_id": "ab", "refund_amount": 1}, "refund_id_invalid"),
        ({"refund_id": "r" * 41, "refund_amount": 1}, "refund_id_invalid"),
        ({"refund_id": "refund-1"}, "refund_amount_missing"),
        ({"refund_id": "refund-1", "refund_amount": 0}, "refund_amount_invalid"),
        ({"refund_id": "refund-1", "refund_amount": 1.001}, "refund_amount_invalid"),
        ({"refund_id": "refund-1", "refund_amount": 1, "refund_speed": "WARP"}, "refund_speed_invalid"),
        ({"refund_id": "refund-1", "refund_amount": 1, "refund_note": "no"}, "refund_note_invalid"),
    ],
)
async def test_invalid_refunds_answer_400_with_their_codes(pg: Pg, body, code):
    order = await pg.paid_order()

    response = await post_refund(pg, order["order_id"], body)

    assert response.status == 400
    assert (await response.json())["code"] == code


async def test_an_unknown_refund_id_answers_404(pg: Pg):
    order = await pg.paid_order()

    response = await pg.client.get(f"/pg/orders/{order['order_id']}/refunds/nope", headers=CREDENTIALS)

    assert response.status == 404
    assert (await response.json())["code"] == "refund_not_found"


async def test_a_refund_after_six_months_is_refused(pg: Pg):
    order = await pg.paid_order()
    await pg.advance(184 * 86_400)

    response = await post_refund(pg, order["order_id"], {"refund_id": "refund-1", "refund_amount": 1})

    assert (await response.json())["code"] == "refund_window_expired"

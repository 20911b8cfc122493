"""Create, fetch, expire and terminate orders; Cashfree's validation codes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.unit.sandbox.support import CREDENTIALS, Pg

IST_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+05:30$")
VALID: dict[str, Any] = {
    "order_amount": 10.5,
    "order_currency": "INR",
    "customer_details": {"customer_id": "cust_1", "customer_phone": "9876543210"},
}


async def create(pg: Pg, body: dict[str, Any]):
    return await pg.client.post("/pg/orders", json=body, headers=CREDENTIALS)


async def test_a_created_order_is_active_and_reads_back_the_same(pg: Pg):
    order = await pg.create_order(
        "250.75",
        order_id="shop-order_1",
        order_note="two mugs",
        order_tags={"plan": "gold"},
        order_meta={"return_url": "https://shop.example/return?order=shop-order_1"},
    )

    fetched = await pg.call("GET", "/orders/shop-order_1")

    assert fetched == order
    assert order["order_status"] == "ACTIVE"
    assert order["entity"] == "order"
    assert str(order["order_amount"]) == "250.75"
    assert order["cf_order_id"].isdigit()
    assert order["payment_session_id"].startswith("session_")
    assert IST_TIMESTAMP.match(order["created_at"])
    assert IST_TIMESTAMP.match(order["order_expiry_time"])
    assert order["order_tags"] == {"plan": "gold"}


async def test_an_order_without_an_expiry_expires_thirty_days_after_creation(pg: Pg):
    order = await pg.create_order()

    created = datetime.fromisoformat(order["created_at"])
    expiry = datetime.fromisoformat(order["order_expiry_time"])

    assert expiry - created == timedelta(days=30)


async def test_an_order_without_an_id_gets_a_generated_one(pg: Pg):
    response = await create(pg, VALID)

    order = await response.json()
    assert response.status == 200
    assert re.fullmatch(r"order_[0-9a-f]{24}", order["order_id"])


async def test_a_second_create_with_the_same_order_id_answers_409_order_already_exists(pg: Pg):
    await create(pg, {**VALID, "order_id": "dup-1"})

    response = await create(pg, {**VALID, "order_id": "dup-1", "order_amount": 99})

    assert response.status == 409
    assert await response.json() == {
        "message": "order with same id is already present",
        "code": "order_already_exists",
        "type": "invalid_request_error",
    }


def without(field: str) -> dict[str, Any]:
    return {key: value for key, value in VALID.items() if key != field}


def customer(**fields: Any) -> dict[str, Any]:
    return {**VALID, "customer_details": {**VALID["customer_details"], **fields}}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**VALID, "order_amount": -100}, "order_amount_invalid"),
        ({**VALID, "order_amount": 0.5}, "order_amount_invalid"),
        ({**VALID, "order_amount": 10.123}, "order_amount_invalid"),
        ({**VALID, "order_amount": "10"}, "order_amount_invalid"),
        (without("order_amount"), "order_amount_missing"),
        ({**VALID, "order_currency": "INjR"}, "order_currency_invalid"),
        ({**VALID, "order_currency": "USD"}, "order_currency_invalid"),
        (without("order_currency"), "order_currency_missing"),
        (without("customer_details"), "customer_details_missing"),
        (customer(customer_phone=""), "customer_details.customer_phone_missing"),
        (customer(customer_phone="12345"), "customer_details.customer_phone_invalid"),
        (customer(customer_id="ab"), "customer_details.customer_id_invalid"),
        (customer(customer_email="not-an-email"), "customer_details.customer_email_invalid"),
        ({**VALID, "order_id": "ab"}, "order_id_invalid"),
        ({**VALID, "order_id": "has space"}, "order_id_invalid"),
        ({**VALID, "order_id": "x" * 46}, "order_id_invalid"),
        ({**VALID, "order_note": "no"}, "order_note_invalid"),
        ({**VALID, "order_expiry_time": "yesterday"}, "order_expiry_time_invalid"),
        ({**VALID, "order_expiry_time": "2001-01-01T00:00:00+05:30"}, "order_expiry_time_invalid"),
        ({**VALID, "order_meta": {"notify_url": "ftp://x"}}, "order_meta.notify_url_invalid"),
        ({**VALID, "order_tags": {f"k{i}": "v" for i in range(16)}}, "order_tags_invalid"),
    ],
)
async def test_invalid_orders_answer_400_with_cashfree_codes(pg: Pg, body, code):
    response = await create(pg, body)

    assert response.status == 400
    answer = await response.json()
    assert answer["code"] == code
    assert answer["type"] == "invalid_request_error"


async def test_an_international_phone_number_is_accepted(pg: Pg):
    response = await create(pg, customer(customer_phone="+447911123456"))

    assert response.status == 200


async def test_an_unpaid_order_expires_when_the_sandbox_clock_passes_its_expiry(pg: Pg):
    clock = await pg.control("GET", "/clock")
    expiry = (datetime.fromisoformat(clock["now"]) + timedelta(hours=1)).isoformat()
    order = await pg.create_order(order_expiry_time=expiry)

    await pg.advance(2 * 3600)

    assert (await pg.call("GET", f"/orders/{order['order_id']}"))["order_status"] == "EXPIRED"


async def test_terminating_an_order_without_attempts_terminates_it_at_once(pg: Pg):
    order = await pg.create_order()

    terminated = await pg.call("PATCH", f"/orders/{order['order_id']}", {"order_status": "TERMINATED"})

    assert terminated["order_status"] == "TERMINATED"


async def test_terminating_during_a_pending_attempt_waits_for_that_attempt(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, upi_id="someone@okbank")

    requested = await pg.call("PATCH", f"/orders/{order['order_id']}", {"order_status": "TERMINATED"})
    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "FAILED"))

    assert requested["order_status"] == "TERMINATION_REQUESTED"
    assert (await pg.call("GET", f"/orders/{order['order_id']}"))["order_status"] == "TERMINATED"


async def test_a_paid_order_cannot_be_terminated(pg: Pg):
    order = await pg.paid_order()

    response = await pg.client.patch(
        f"/pg/orders/{order['order_id']}", json={"order_status": "TERMINATED"}, headers=CREDENTIALS
    )

    assert response.status == 400
    assert (await response.json())["code"] == "order_not_active"


async def test_terminate_accepts_only_the_terminated_status(pg: Pg):
    order = await pg.create_order()

    response = await pg.client.patch(
        f"/pg/orders/{order['order_id']}", json={"order_status": "PAID"}, headers=CREDENTIALS
    )

    assert response.status == 400
    assert (await response.json())["code"] == "order_status_invalid"


def simulation(cf_payment_id: str, status: str) -> dict[str, Any]:
    return {"entity": "PAYMENTS", "entity_id": cf_payment_id, "entity_simulation": {"payment_status": status}}


async def test_a_termination_request_ends_paid_when_the_pending_attempt_succeeds(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, upi_id="someone@okbank")
    await pg.call("PATCH", f"/orders/{order['order_id']}", {"order_status": "TERMINATED"})

    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "SUCCESS"))

    assert (await pg.call("GET", f"/orders/{order['order_id']}"))["order_status"] == "PAID"

"""``x-idempotency-key`` on writes: replay, mismatch (422), per-endpoint scope, 24 h lifetime."""

from __future__ import annotations

from typing import Any

from tests.unit.sandbox.support import CREDENTIALS, PUBLIC, Pg

BODY: dict[str, Any] = {
    "order_id": "idem-1",
    "order_amount": 10,
    "order_currency": "INR",
    "customer_details": {"customer_id": "cust_1", "customer_phone": "9876543210"},
}


def keyed(key: str) -> dict[str, str]:
    return {**CREDENTIALS, "x-idempotency-key": key}


async def test_the_same_key_and_body_replays_the_stored_answer(pg: Pg):
    first = await pg.client.post("/pg/orders", json=BODY, headers=keyed("key-1"))
    second = await pg.client.post("/pg/orders", json=BODY, headers=keyed("key-1"))

    assert first.status == second.status == 200
    assert await first.read() == await second.read()
    assert first.headers["x-idempotency-replayed"] == "false"
    assert second.headers["x-idempotency-replayed"] == "true"
    assert second.headers["x-idempotency-key"] == "key-1"


async def test_the_same_key_with_another_body_answers_422_idempotency_error(pg: Pg):
    await pg.client.post("/pg/orders", json=BODY, headers=keyed("key-2"))

    response = await pg.client.post("/pg/orders", json={**BODY, "order_amount": 11}, headers=keyed("key-2"))

    assert response.status == 422
    answer = await response.json()
    assert answer["type"] == "idempotency_error"
    assert answer["code"] == "request_invalid"


async def test_without_a_key_a_repeated_create_meets_409(pg: Pg):
    await pg.client.post("/pg/orders", json=BODY, headers=CREDENTIALS)

    response = await pg.client.post("/pg/orders", json=BODY, headers=CREDENTIALS)

    assert response.status == 409


async def test_keys_are_scoped_per_endpoint(pg: Pg):
    order = await pg.paid_order()
    await pg.client.post("/pg/orders", json=BODY, headers=keyed("shared"))

    refund = await pg.client.post(
        f"/pg/orders/{order['order_id']}/refunds",
        json={"refund_id": "refund-1", "refund_amount": 1},
        headers=keyed("shared"),
    )

    assert refund.status == 200
    assert refund.headers["x-idempotency-replayed"] == "false"


async def test_a_replayed_refund_does_not_refund_twice(pg: Pg):
    order = await pg.paid_order("10.00")
    body = {"refund_id": "refund-1", "refund_amount": 10}
    path = f"/pg/orders/{order['order_id']}/refunds"

    first = await pg.client.post(path, json=body, headers=keyed("refund-key"))
    again = await pg.client.post(path, json=body, headers=keyed("refund-key"))

    assert (first.status, again.status) == (200, 200)
    assert again.headers["x-idempotency-replayed"] == "true"
    assert len(await pg.call("GET", f"/orders/{order['order_id']}/refunds")) == 1


async def test_a_key_is_forgotten_after_24_sandbox_hours(pg: Pg):
    await pg.client.post("/pg/orders", json=BODY, headers=keyed("key-3"))

    await pg.advance(24 * 3600 + 1)
    response = await pg.client.post("/pg/orders", json=BODY, headers=keyed("key-3"))

    assert response.status == 409
    assert response.headers["x-idempotency-replayed"] == "false"


async def test_errors_are_replayed_too_but_injected_faults_are_not(pg: Pg):
    await pg.control("POST", "/faults/next", {"statuses": [503]})
    bad = {**BODY, "order_amount": -1}

    injected = await pg.client.post("/pg/orders", json=bad, headers=keyed("key-4"))
    real = await pg.client.post("/pg/orders", json=bad, headers=keyed("key-4"))
    replayed = await pg.client.post("/pg/orders", json=bad, headers=keyed("key-4"))

    assert (injected.status, real.status, replayed.status) == (503, 400, 400)
    assert real.headers["x-idempotency-replayed"] == "false"
    assert replayed.headers["x-idempotency-replayed"] == "true"


async def test_order_pay_honours_the_key_without_credentials(pg: Pg):
    order = await pg.create_order()
    body = {
        "payment_session_id": order["payment_session_id"],
        "payment_method": {"upi": {"channel": "collect", "upi_id": "someone@okbank"}},
    }
    headers = {**PUBLIC, "x-idempotency-key": "pay-1"}

    first = await pg.client.post("/pg/orders/sessions", json=body, headers=headers)
    second = await pg.client.post("/pg/orders/sessions", json=body, headers=headers)

    assert (await first.json())["cf_payment_id"] == (await second.json())["cf_payment_id"]
    assert len(await pg.call("GET", f"/orders/{order['order_id']}/payments")) == 1

"""The fault switches and queue, and Cashfree's per-minute rate limits on the sandbox clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.sandbox.support import CREDENTIALS, PUBLIC, Pg, start_sandbox

ORDER_BODY: dict[str, Any] = {
    "order_amount": 10,
    "order_currency": "INR",
    "customer_details": {"customer_id": "cust_1", "customer_phone": "9876543210"},
}


async def get_order(pg: Pg, order_id: str = "missing"):
    return await pg.client.get(f"/pg/orders/{order_id}", headers=CREDENTIALS)


async def test_queued_statuses_answer_the_next_calls_in_order(pg: Pg):
    await pg.control("PUT", "/faults", {"retry_after_seconds": 7})
    await pg.control("POST", "/faults/next", {"statuses": [500, 429, 503, 502]})

    answers = [await get_order(pg) for _ in range(5)]

    assert [a.status for a in answers] == [500, 429, 503, 502, 404]
    bodies = [await a.json() for a in answers]
    assert bodies[0] == {"message": bodies[0]["message"], "code": "internal_error", "type": "api_error"}
    assert (bodies[1]["type"], bodies[1]["code"]) == ("rate_limit_error", "request_failed")
    assert bodies[3]["code"] == "bank_processing_failure"
    assert answers[1].headers["x-ratelimit-retry"] == "7"
    assert answers[1].headers["x-ratelimit-remaining"] == "0"
    assert answers[1].headers["x-ratelimit-type"] == "app_id"


async def test_an_apply_fault_makes_the_change_but_loses_the_answer(pg: Pg):
    await pg.control("POST", "/faults/next", {"statuses": [{"status": 500, "apply": True}]})
    body = {**ORDER_BODY, "order_id": "lost-answer"}

    lost = await pg.client.post("/pg/orders", json=body, headers=CREDENTIALS)
    retried = await pg.client.post("/pg/orders", json=body, headers=CREDENTIALS)

    assert lost.status == 500
    assert retried.status == 409
    assert (await get_order(pg, "lost-answer")).status == 200


async def test_the_queue_applies_to_order_pay_too(pg: Pg):
    order = await pg.create_order()
    await pg.control("POST", "/faults/next", {"statuses": [429]})
    body = {"payment_session_id": order["payment_session_id"], "payment_method": {"upi": {"channel": "link"}}}

    response = await pg.client.post("/pg/orders/sessions", json=body, headers=PUBLIC)

    assert response.status == 429
    assert response.headers["x-ratelimit-type"] == "ip"


async def test_an_error_rate_of_one_fails_every_call_but_order_pay(pg: Pg):
    order = await pg.create_order()
    await pg.control("PUT", "/faults", {"error_rate": 1})
    body = {"payment_session_id": order["payment_session_id"], "payment_method": {"upi": {"channel": "link"}}}

    failed = await get_order(pg, order["order_id"])
    paid = await pg.client.post("/pg/orders/sessions", json=body, headers=PUBLIC)

    assert failed.status == 500
    assert paid.status == 200


async def test_a_rate_limit_rate_of_one_answers_429_with_the_configured_wait(pg: Pg):
    await pg.control("PUT", "/faults", {"rate_limit_rate": 1, "retry_after_seconds": 3})

    response = await get_order(pg)

    assert response.status == 429
    assert response.headers["x-ratelimit-retry"] == "3"


async def test_delete_switches_every_fault_off_and_empties_the_queue(pg: Pg):
    await pg.control("PUT", "/faults", {"error_rate": 1, "latency_ms": 5, "duplicate_webhooks": True})
    await pg.control("POST", "/faults/next", {"statuses": [503]})

    shown = await pg.control("GET", "/faults")
    cleared = await pg.control("DELETE", "/faults")

    assert shown["error_rate"] == 1
    assert shown["latency_ms"] == 5
    assert shown["duplicate_webhooks"] is True
    assert shown["queued"] == [{"status": 503, "apply": False}]
    assert cleared["error_rate"] == 0
    assert cleared["queued"] == []
    assert (await get_order(pg)).status == 404


async def test_latency_still_answers_normally(pg: Pg):
    await pg.control("PUT", "/faults", {"latency_ms": 1})

    assert (await get_order(pg)).status == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/faults", {"error_rate": 2}),
        ("PUT", "/faults", {"no_such_fault": True}),
        ("POST", "/faults/next", {"statuses": [418]}),
        ("POST", "/clock/advance", {"seconds": -5}),
        ("POST", "/settle", {"order_id": 5}),
    ],
)
async def test_bad_control_bodies_answer_400(pg: Pg, method, path, body):
    response = await pg.client.request(method, f"/_sandbox{path}", json=body)

    assert response.status == 400
    assert (await response.json())["code"] == "request_invalid"


async def test_the_31st_create_order_in_a_sandbox_minute_answers_429(pg: Pg):
    answers = [await pg.client.post("/pg/orders", json=ORDER_BODY, headers=CREDENTIALS) for _ in range(31)]

    assert [a.status for a in answers[:30]] == [200] * 30
    assert answers[0].headers["x-ratelimit-limit"] == "30"
    assert answers[0].headers["x-ratelimit-remaining"] == "29"
    assert answers[0].headers["x-ratelimit-retry"] == "0"
    refused = answers[30]
    assert refused.status == 429
    assert (await refused.json())["type"] == "rate_limit_error"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["x-ratelimit-retry"]) <= 59
    assert refused.headers["x-ratelimit-type"] == "app_id"


async def test_the_window_slides_on_the_sandbox_clock(pg: Pg):
    for _ in range(30):
        await pg.client.post("/pg/orders", json=ORDER_BODY, headers=CREDENTIALS)

    await pg.advance(60)
    response = await pg.client.post("/pg/orders", json=ORDER_BODY, headers=CREDENTIALS)

    assert response.status == 200


async def test_order_pay_is_limited_per_ip(pg: Pg):
    order = await pg.create_order()
    body = {"payment_session_id": order["payment_session_id"], "payment_method": {"upi": {"channel": "link"}}}

    answers = [await pg.client.post("/pg/orders/sessions", json=body, headers=PUBLIC) for _ in range(31)]

    assert [a.status for a in answers[:30]] == [200] * 30
    assert answers[30].status == 429
    assert answers[30].headers["x-ratelimit-type"] == "ip"
    assert "IP" in (await answers[30].json())["message"]


async def test_limits_can_be_switched_off_for_tests_that_poll_hard(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, enforce_rate_limits=False)

    answers = [await get_order(pg) for _ in range(61)]

    assert {a.status for a in answers} == {404}

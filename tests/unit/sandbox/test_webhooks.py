"""Webhooks: signed like Cashfree's, retried at 2, 10 and 30 sandbox minutes, and the delivery faults."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from payments.bridges.cashfree.signature import sign
from tests.unit.sandbox.support import SECRET, Pg, Receiver, start_sandbox
from tests.waiting import eventually


async def attempts_of(pg: Pg, count: int, index: int = 0) -> list[dict[str, Any]]:
    """Wait until delivery ``index`` has ``count`` attempts; return them."""

    async def probe():
        deliveries = await pg.deliveries()
        return len(deliveries) > index and len(deliveries[index]["attempts"]) >= count and deliveries[index]

    delivery = await eventually(probe, what=f"{count} attempts of delivery {index}")
    return delivery["attempts"]


def gap_seconds(earlier: dict[str, Any], later: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(later["sent_at"]) - datetime.fromisoformat(earlier["sent_at"])
    ).total_seconds()


async def test_a_payment_webhook_arrives_signed_with_every_cashfree_header(pg: Pg, receiver: Receiver):
    order = await pg.create_order("2.00", order_tags={"plan": "gold"})

    await pg.pay_upi(order)
    delivered = (await eventually(lambda: receiver.received, what="the webhook"))[0]

    headers = delivered.headers
    assert headers["x-webhook-signature"] == sign(SECRET, headers["x-webhook-timestamp"], delivered.body)
    assert len(headers["x-webhook-timestamp"]) == 13
    assert headers["x-webhook-timestamp"].isdigit()
    assert headers["x-webhook-version"] == "2025-01-01"
    assert headers["x-webhook-attempt"] == "1"
    assert headers["x-idempotency-key"]
    assert headers["Content-Type"] == "application/json"
    assert b'"order_amount":2.00' in delivered.body
    assert b'"payment_amount":2.00' in delivered.body
    payload = delivered.payload
    assert payload["type"] == "PAYMENT_SUCCESS_WEBHOOK"
    assert set(payload) == {"data", "event_time", "type"}
    assert payload["data"]["order"] == {
        "order_id": order["order_id"],
        "order_amount": payload["data"]["order"]["order_amount"],
        "order_currency": "INR",
        "order_tags": {"plan": "gold"},
    }
    assert payload["data"]["payment"]["payment_status"] == "SUCCESS"
    assert payload["data"]["payment"]["international_payment"] == {"international": False}
    assert payload["data"]["customer_details"]["customer_id"] == "customer-1"
    assert payload["data"]["error_details"] is None
    assert payload["event_time"].endswith("+05:30")


async def test_failed_and_dropped_attempts_send_their_webhook_types(pg: Pg, receiver: Receiver):
    order = await pg.create_order()
    await pg.pay_upi(order, "testfailure@gocash")
    dropped = await pg.pay_upi(order, "someone@okbank")
    simulation = {"payment_status": "USER_DROPPED"}
    await pg.call(
        "POST",
        "/simulate",
        {"entity": "PAYMENTS", "entity_id": dropped["cf_payment_id"], "entity_simulation": simulation},
    )

    received = await eventually(
        lambda: len(receiver.received) >= 2 and receiver.received, what="two webhooks"
    )

    types = [d.payload["type"] for d in received]
    assert types == ["PAYMENT_FAILED_WEBHOOK", "PAYMENT_USER_DROPPED_WEBHOOK"]
    assert received[0].payload["data"]["error_details"]["error_code"] == "TRANSACTION_DECLINED"


async def test_a_failing_receiver_is_retried_2_10_and_30_sandbox_minutes_apart_then_given_up(
    pg: Pg, receiver: Receiver
):
    receiver.statuses.extend([500, 500, 502, 404])
    await pg.paid_order()

    await attempts_of(pg, 1)
    await pg.advance(120)
    await attempts_of(pg, 2)
    await pg.advance(600)
    await attempts_of(pg, 3)
    await pg.advance(1800)
    attempts = await attempts_of(pg, 4)

    assert [a["status"] for a in attempts] == [500, 500, 502, 404]
    gaps = [gap_seconds(a, b) for a, b in itertools.pairwise(attempts)]
    assert [round(gap) for gap in gaps] == [120, 600, 1800]
    assert all(abs(gap - round(gap)) < 1 for gap in gaps)
    assert (await pg.deliveries())[0]["state"] == "failed"
    assert [d.headers["x-webhook-attempt"] for d in receiver.received] == ["1", "2", "3", "4"]
    assert len({d.headers["x-idempotency-key"] for d in receiver.received}) == 1
    assert len({d.body for d in receiver.received}) == 1
    assert all(
        d.headers["x-webhook-signature"] == sign(SECRET, d.headers["x-webhook-timestamp"], d.body)
        for d in receiver.received
    )


async def test_retries_stop_at_the_first_2xx(pg: Pg, receiver: Receiver):
    receiver.statuses.extend([503, 500, 204])
    await pg.paid_order()
    await attempts_of(pg, 1)
    await pg.advance(120)
    await attempts_of(pg, 2)
    await pg.advance(600)
    await attempts_of(pg, 3)

    await pg.advance(3600)
    await pg.paid_order()
    await attempts_of(pg, 1, index=1)

    first = (await pg.deliveries())[0]
    assert first["state"] == "delivered"
    assert [a["status"] for a in first["attempts"]] == [503, 500, 204]
    assert first["next_attempt_at"] is None


async def test_an_unreachable_receiver_counts_as_a_failed_attempt(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, webhook_url="http://127.0.0.1:9/closed")

    await pg.paid_order()
    attempts = await attempts_of(pg, 1)

    assert attempts[0]["status"] is None
    assert attempts[0]["error"]
    assert (await pg.deliveries())[0]["state"] == "pending"


async def test_an_orders_notify_url_wins_over_the_default(pg: Pg, receiver: Receiver):
    notify_url = receiver.url.replace("/hooks", "/order-hooks")

    await pg.paid_order(order_meta={"notify_url": notify_url})
    await attempts_of(pg, 1)

    assert (await pg.deliveries())[0]["url"] == notify_url


async def test_version_2023_webhooks_have_no_idempotency_header_nor_2025_fields(aiohttp_client, receiver):
    pg = await start_sandbox(aiohttp_client, webhook_url=receiver.url, webhook_version="2023-08-01")

    await pg.paid_order()
    delivered = (await eventually(lambda: receiver.received, what="the webhook"))[0]

    assert delivered.headers["x-webhook-version"] == "2023-08-01"
    assert "x-idempotency-key" not in delivered.headers
    assert "international_payment" not in delivered.payload["data"]["payment"]


async def test_the_duplicate_fault_sends_each_event_twice_with_one_idempotency_key(
    pg: Pg, receiver: Receiver
):
    await pg.control("PUT", "/faults", {"duplicate_webhooks": True})

    await pg.paid_order()
    received = await eventually(
        lambda: len(receiver.received) >= 2 and receiver.received, what="two deliveries"
    )

    assert received[0].body == received[1].body
    assert received[0].headers["x-idempotency-key"] == received[1].headers["x-idempotency-key"]
    assert len(await pg.deliveries()) == 2


async def test_withheld_webhooks_wait_for_release_and_the_reorder_fault_sends_them_newest_first(
    pg: Pg, receiver: Receiver
):
    await pg.control("PUT", "/faults", {"withhold_webhooks": True, "reorder_webhooks": True})
    orders = [await pg.paid_order() for _ in range(3)]

    held = await pg.deliveries()
    released = await pg.control("POST", "/webhooks/release")
    received = await eventually(lambda: len(receiver.received) >= 3 and receiver.received, what="3 webhooks")

    assert [d["state"] for d in held] == ["withheld"] * 3
    assert released == {"released": 3}
    order_ids = [d.payload["data"]["order"]["order_id"] for d in received]
    assert order_ids == [order["order_id"] for order in reversed(orders)]


async def test_without_the_reorder_fault_a_released_batch_arrives_in_creation_order(
    pg: Pg, receiver: Receiver
):
    await pg.control("PUT", "/faults", {"withhold_webhooks": True})
    orders = [await pg.paid_order() for _ in range(3)]
    await pg.control("DELETE", "/faults")

    await pg.control("POST", "/webhooks/release")
    received = await eventually(lambda: len(receiver.received) >= 3 and receiver.received, what="3 webhooks")

    assert [d.payload["data"]["order"]["order_id"] for d in received] == [o["order_id"] for o in orders]


async def test_the_listing_names_the_event_order_url_and_attempts(pg: Pg, receiver: Receiver):
    order = await pg.paid_order()

    await attempts_of(pg, 1)
    delivery = (await pg.deliveries())[0]

    assert delivery["event_type"] == "PAYMENT_SUCCESS_WEBHOOK"
    assert delivery["order_id"] == order["order_id"]
    assert delivery["url"] == receiver.url
    assert delivery["state"] == "delivered"
    assert delivery["attempts"][0]["number"] == 1
    assert delivery["attempts"][0]["status"] == 200

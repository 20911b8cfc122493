"""Cashfree webhooks through the whole product: signed deliveries -> ingest -> RabbitMQ -> the webhook
agent -> Cashfree confirms -> payments, on the real services."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import uuid

from tests.waiting import eventually

USER = "user-webhooks"


async def payment_status(stack, payment_id: str) -> str:
    [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment_id)
    return row["status"]


async def test_the_gateways_signed_webhook_alone_drives_a_payment_to_success(stack):
    payment = await (await stack.create(USER)).json()

    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")  # the sandbox then sends its webhook

    await eventually(
        lambda: _is(stack, payment["paymentId"], "SUCCESS"), timeout=30, what="the webhook's effect"
    )
    await eventually(lambda: _logged(stack, payment["orderId"]), timeout=30, what="the webhook log to close")
    logs = await stack.rows(
        "SELECT processing_status, event_type FROM webhook_logs WHERE order_id = $1", payment["orderId"]
    )
    assert [(row["processing_status"], row["event_type"]) for row in logs] == [
        ("SUCCESS", "PAYMENT_SUCCESS_WEBHOOK")
    ]
    audit = await stack.rows(
        "SELECT actor_id FROM audit_logs WHERE resource_id = $1 AND action = 'payment.succeed'",
        payment["paymentId"],
    )
    assert [row["actor_id"] for row in audit] == ["cashfree-webhook"]
    events = await stack.rows(
        "SELECT 1 FROM outbox WHERE routing_key = 'payment.success' AND payload->>'paymentId' = $1",
        payment["paymentId"],
    )
    assert len(events) == 1


async def _logged(stack, order_id: str) -> bool:
    rows = await stack.rows(
        "SELECT 1 FROM webhook_logs WHERE order_id = $1 AND processing_status = 'SUCCESS'", order_id
    )
    return bool(rows)


async def _is(stack, payment_id: str, status: str) -> bool:
    return await payment_status(stack, payment_id) == status


def payment_event(order_id: str, attempt_id: str, status: str) -> bytes:
    kind = {"SUCCESS": "PAYMENT_SUCCESS_WEBHOOK", "FAILED": "PAYMENT_FAILED_WEBHOOK"}[status]
    data = {
        "order": {"order_id": order_id, "order_amount": 499.0, "order_currency": "INR"},
        "payment": {
            "cf_payment_id": attempt_id,
            "payment_status": status,
            "payment_amount": 499.0,
            "payment_currency": "INR",
            "payment_group": "upi",
        },
    }
    return json.dumps({"data": data, "event_time": "2026-11-26T15:30:00+05:30", "type": kind}).encode()


async def deliver(stack, body: bytes, key: str) -> int:
    response = await stack.api.post(
        "/api/v1/webhooks/cashfree", data=body, headers=stack.signed(body, idempotency_key=key)
    )
    return response.status


async def paid_and_unpaid_payments(stack, count: int) -> tuple[list[dict], list[tuple[bytes, str]]]:
    """``count`` payments, about 70% paid after 1-4 declines, the rest declined 3-4 times; and one
    webhook event (body, idempotency key) per attempt (about 3.5 a payment)."""
    rng = random.Random(7)
    await stack.put_faults({"withhold_webhooks": True})  # we deliver, not the sandbox
    payments = [await (await stack.create(USER)).json() for _ in range(count)]
    events: list[tuple[bytes, str]] = []
    for payment in payments:
        paid = rng.random() < 0.7
        outcomes = ["FAILED"] * rng.randint(1 if paid else 3, 4) + (["SUCCESS"] if paid else [])
        for outcome in outcomes:
            await stack.pay(
                payment["paymentSessionId"],
                "testsuccess@gocash" if outcome == "SUCCESS" else "testfailure@gocash",
            )
        attempts = stack.sandbox_attempts(payment["orderId"])
        for attempt_id, status in attempts:
            events.append((payment_event(payment["orderId"], attempt_id, status), f"evt-{attempt_id}"))
        payment["paid"] = paid
    return payments, events


async def test_a_shuffled_flood_with_duplicates_ends_in_the_right_states_with_one_effect_per_event(stack):
    payments, events = await paid_and_unpaid_payments(stack, 200)
    rng = random.Random(11)
    # 1,000 deliveries: every event at least once, the rest (about 30%) repeats of random events.
    deliveries = events + rng.choices(events, k=1000 - len(events))
    rng.shuffle(deliveries)
    gate = asyncio.Semaphore(40)

    async def send(body: bytes, key: str) -> int:
        async with gate:
            return await deliver(stack, body, key)

    statuses = await asyncio.gather(*(send(body, key) for body, key in deliveries))

    assert set(statuses) == {200}
    assert 0.2 < 1 - len(events) / len(deliveries) < 0.4, "about 30% of the deliveries are duplicates"
    await eventually(lambda: _all_logged(stack, len(events)), timeout=120, what="every event processed")
    for payment in payments:
        assert await payment_status(stack, payment["paymentId"]) == (
            "SUCCESS" if payment["paid"] else "FAILED"
        )
    successes = await stack.rows(
        "SELECT payload->>'paymentId' AS id, count(*) AS n FROM outbox WHERE routing_key = 'payment.success' "
        "AND payload->>'paymentId' = ANY($1::text[]) GROUP BY 1",
        [p["paymentId"] for p in payments],
    )
    assert {row["id"] for row in successes} == {p["paymentId"] for p in payments if p["paid"]}
    assert {row["n"] for row in successes} == {1}
    processing = await stack.rows(
        "SELECT count(*) AS n FROM outbox WHERE routing_key = 'webhook.cashfree.processing' "
        "AND payload->>'eventId' = ANY($1::text[])",
        [f"cashfree:idem:{key}" for _, key in events],
    )
    assert processing[0]["n"] == len(events), "each event was started once, whatever its duplicates"


async def _all_logged(stack, expected: int) -> bool:
    rows = await stack.rows(
        "SELECT count(*) AS n FROM webhook_logs "
        "WHERE event_id LIKE 'cashfree:idem:evt-%' AND processing_status = 'SUCCESS'"
    )
    return rows[0]["n"] >= expected


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


async def test_no_webhook_answered_200_is_lost_when_rabbitmq_stops_during_a_flood(stack):
    payments, events = await paid_and_unpaid_payments(stack, 40)
    answered: dict[str, int] = {}

    async def flood() -> None:
        for body, key in events:
            answered[key] = await deliver(stack, body, key)

    flooding = asyncio.create_task(flood())
    await eventually(lambda: len(answered) >= len(events) // 3, what="a third of the flood delivered")
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    try:
        await flooding
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")

    refused = [(body, key) for body, key in events if answered[key] != 200]
    assert refused, "the outage refused some deliveries (503), which Cashfree retries"
    assert {answered[key] for _, key in refused} == {503}

    async def redelivered() -> bool:  # Cashfree's retries, after the broker is back
        return all([await deliver(stack, body, key) == 200 for body, key in refused])

    await eventually(redelivered, timeout=60, interval=0.5, what="the retried deliveries to be accepted")
    await eventually(
        lambda: _keys_processed(stack, [key for _, key in events]), timeout=120, what="every event"
    )
    for payment in payments:
        assert await payment_status(stack, payment["paymentId"]) == (
            "SUCCESS" if payment["paid"] else "FAILED"
        )


async def _keys_processed(stack, keys: list[str]) -> bool:
    rows = await stack.rows(
        "SELECT count(*) AS n FROM webhook_logs "
        "WHERE processing_status = 'SUCCESS' AND event_id = ANY($1::text[])",
        [f"cashfree:idem:{key}" for key in keys],
    )
    return rows[0]["n"] == len(keys)


async def test_refused_deliveries_queue_nothing(stack):
    payment = await (await stack.create(USER)).json()
    body = payment_event(payment["orderId"], "1", "SUCCESS")
    good = stack.signed(body, idempotency_key=f"evt-{uuid.uuid4().hex}")
    cases = {
        "tampered body": (body.replace(b"499.0", b"4.99"), good),
        "wrong secret": (body, {**good, "x-webhook-signature": "AAAA" + good["x-webhook-signature"][4:]}),
        "stale timestamp": (
            body,
            {**good, "x-webhook-timestamp": str(int(good["x-webhook-timestamp"]) - 3_600_000)},
        ),
    }

    for name, (sent, headers) in cases.items():
        response = await stack.api.post("/api/v1/webhooks/cashfree", data=sent, headers=headers)
        assert response.status == 401, name

    assert await stack.rows("SELECT 1 FROM webhook_logs WHERE order_id = $1", payment["orderId"]) == []


async def test_a_webhook_that_keeps_failing_walks_the_tiers_into_the_dlq_and_redrive_completes_it(stack):
    payment = await (await stack.create(USER)).json()
    await stack.put_faults({"withhold_webhooks": True})
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    [(attempt_id, _)] = stack.sandbox_attempts(payment["orderId"])
    key = f"evt-{attempt_id}"
    # Cashfree's API fails every call the agent makes: Get Order answers 500 until the fault clears.
    await stack.put_faults({"error_rate": 1.0, "withhold_webhooks": True})

    assert await deliver(stack, payment_event(payment["orderId"], attempt_id, "SUCCESS"), key) == 200

    admin = stack.headers("ops", admin=True)

    async def dead_letters() -> list:
        response = await stack.api.get("/api/v1/admin/dlq/webhooks.received", headers=admin)
        return [d for d in (await response.json())["deadLetters"] if d["messageId"] == f"cashfree:idem:{key}"]

    [dead] = await eventually(dead_letters, timeout=60, what="the webhook in the dead-letter queue")
    assert dead["failures"] == 5
    assert dead["reason"] == "exhausted"
    [log] = await stack.rows(
        "SELECT processing_status, retry_count FROM webhook_logs WHERE event_id = $1", f"cashfree:idem:{key}"
    )
    assert log["processing_status"] == "FAILED"
    announced = await stack.rows(
        "SELECT routing_key FROM outbox WHERE payload->>'eventId' = $1 AND routing_key IN "
        "('webhook.cashfree.failed', 'webhook.cashfree.deadletter', 'analytics.webhook.failure')",
        f"cashfree:idem:{key}",
    )
    assert {row["routing_key"] for row in announced} == {
        "webhook.cashfree.failed",
        "webhook.cashfree.deadletter",
        "analytics.webhook.failure",
    }

    await stack.put_faults({})  # the fault clears
    redrive = await stack.api.post(
        "/api/v1/admin/dlq/webhooks.received/redrive",
        json={"messageId": f"cashfree:idem:{key}"},
        headers=admin,
    )

    assert redrive.status == 200, await redrive.text()
    assert (await redrive.json())["redriven"] == 1
    await eventually(
        lambda: _is(stack, payment["paymentId"], "SUCCESS"), timeout=30, what="the re-driven webhook"
    )
    audit = await stack.rows(
        "SELECT actor_id FROM audit_logs WHERE action = 'admin.dlq.redrive' ORDER BY id DESC LIMIT 1"
    )
    assert audit[0]["actor_id"] == "ops"

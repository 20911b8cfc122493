"""Create, pay and verify payments through the whole product: HTTP -> RabbitMQ -> the payments agent
-> the Cashfree sandbox -> PostgreSQL, on the real services."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

from payments.domain.payment.ids import payment_id_for
from tests.waiting import eventually

USER, OTHER = "user-e2e-1", "user-e2e-2"


async def test_a_payment_is_created_paid_at_the_gateway_and_verified(stack):
    await stack.put_faults({"withhold_webhooks": True})  # this test is about verify; webhooks have their own
    created = await stack.create(USER)
    assert created.status == 201, await created.text()
    payment = await created.json()
    assert payment["status"] == "PENDING"
    assert payment["paymentSessionId"].startswith("session_")
    assert payment["amount"] == "499.00"

    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    verified = await stack.verify(USER, payment["paymentId"])

    assert verified.status == 200, await verified.text()
    body = await verified.json()
    assert body["status"] == "SUCCESS"
    assert body["gatewayPaymentId"]
    assert body["paymentMethod"] == "upi"
    # The payment's own events; its invoice and emails follow from the invoice agent, in their own time.
    events = await stack.rows(
        "SELECT routing_key FROM outbox WHERE payload->>'paymentId' = $1 AND routing_key NOT LIKE 'email.%'"
        " ORDER BY id",
        payment["paymentId"],
    )
    assert [row["routing_key"] for row in events] == [
        "payment.created",
        "analytics.payment.created",
        "payment.success",
        "analytics.payment.success",
    ]
    audit = await stack.rows(
        "SELECT action, actor_id FROM audit_logs WHERE resource_id = $1 ORDER BY id", payment["paymentId"]
    )
    assert [(row["action"], row["actor_id"]) for row in audit] == [
        ("payment.created", USER),
        ("payment.open", USER),
        ("payment.succeed", USER),
    ]


async def test_a_failed_attempt_then_a_successful_one_ends_in_success(stack):
    payment = await (await stack.create(USER)).json()

    await stack.pay(payment["paymentSessionId"], "testfailure@gocash")
    failed = await (await stack.verify(USER, payment["paymentId"])).json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    paid = await (await stack.verify(USER, payment["paymentId"])).json()

    assert failed["status"] == "FAILED"
    assert failed["failureReason"]
    assert paid["status"] == "SUCCESS"
    attempts = await stack.rows(
        "SELECT status FROM transactions WHERE payment_id = $1 ORDER BY created_at", payment["paymentId"]
    )
    assert [row["status"] for row in attempts] == ["FAILED", "SUCCESS"]


async def test_200_concurrent_creates_with_one_key_make_one_payment_and_one_gateway_order(stack):
    key = uuid.uuid4().hex

    responses = await asyncio.gather(*(stack.create(USER, key=key) for _ in range(200)))

    statuses = [response.status for response in responses]
    assert set(statuses) <= {201, 409}, statuses
    bodies = [await response.json() for response in responses if response.status == 201]
    assert bodies, "at least one caller got the payment"
    assert len({body["paymentId"] for body in bodies}) == 1
    payment_id = bodies[0]["paymentId"]
    assert len(await stack.rows("SELECT 1 FROM payments WHERE payment_id = $1", payment_id)) == 1
    order_id = bodies[0]["orderId"]
    assert [o for o in stack.sandbox.ledger.orders if o == order_id] == [order_id]
    assert sum(order.order_id == order_id for order in stack.sandbox.ledger.orders.values()) == 1
    replay = await stack.create(USER, key=key)
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert (await replay.json())["paymentId"] == payment_id


async def test_100_concurrent_verifies_of_one_payment_make_one_transition(stack):
    payment = await (await stack.create(USER)).json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")

    responses = await asyncio.gather(*(stack.verify(USER, payment["paymentId"]) for _ in range(100)))

    assert {response.status for response in responses} == {200}
    assert {(await response.json())["status"] for response in responses} == {"SUCCESS"}
    successes = await stack.rows(
        "SELECT 1 FROM outbox WHERE payload->>'paymentId' = $1 AND routing_key = 'payment.success'",
        payment["paymentId"],
    )
    assert len(successes) == 1
    transitions = await stack.rows(
        "SELECT 1 FROM audit_logs WHERE resource_id = $1 AND action = 'payment.succeed'", payment["paymentId"]
    )
    assert len(transitions) == 1


async def test_an_amount_that_does_not_match_the_gateway_is_refused_audited_and_alerted(stack):
    # Only our verify may look at this payment: Cashfree's own webhook would race it to the check.
    await stack.put_faults({"withhold_webhooks": True})
    payment = await (await stack.create(USER)).json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    # Someone edits our record behind the service's back: it no longer matches what Cashfree charged.
    await stack.resources.pool.execute(
        "UPDATE payments SET amount = 4.99 WHERE payment_id = $1", payment["paymentId"]
    )

    refused = await stack.verify(USER, payment["paymentId"])

    assert refused.status == 400
    assert (await refused.json())["error"]["code"] == "amount_mismatch"
    [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment["paymentId"])
    assert row["status"] == "PENDING"
    audit = await stack.rows(
        "SELECT 1 FROM audit_logs WHERE resource_id = $1 AND action = 'payment.verify_mismatch'",
        payment["paymentId"],
    )
    assert len(audit) == 1
    alerts = await stack.rows(
        "SELECT 1 FROM outbox WHERE routing_key = 'email.admin.alert'"
        " AND payload->'details'->>'paymentId' = $1",
        payment["paymentId"],
    )
    assert len(alerts) == 1


async def test_another_users_payment_is_not_found_for_them(stack):
    payment = await (await stack.create(USER)).json()

    seen = await stack.api.get(f"/api/v1/payments/{payment['paymentId']}", headers=stack.headers(OTHER))
    verified = await stack.verify(OTHER, payment["paymentId"])
    by_admin = await stack.api.get(
        f"/api/v1/payments/{payment['paymentId']}", headers=stack.headers("ops", admin=True)
    )

    assert seen.status == 404
    assert verified.status == 404
    assert by_admin.status == 200


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


async def test_a_broker_outage_during_create_fails_cleanly_and_the_retry_completes(stack):
    key = uuid.uuid4().hex
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    try:
        during = await stack.create(USER, key=key)
    finally:
        await asyncio.to_thread(_rabbitmqctl, "start_app")
        await asyncio.to_thread(_rabbitmqctl, "await_startup")

    assert during.status == 503, await during.text()
    assert (await during.json())["error"]["code"] in {"dependency_unavailable", "unroutable_message"}
    payment_id = payment_id_for(USER, key)
    assert await stack.rows("SELECT 1 FROM payments WHERE payment_id = $1", payment_id) == []

    async def retried() -> bool:
        response = await stack.create(USER, key=key)
        return response.status == 201

    # The robust connections come back on their own; the same key then creates the payment once.
    await eventually(retried, timeout=60, interval=0.5, what="the retried create to succeed")
    assert len(await stack.rows("SELECT 1 FROM payments WHERE payment_id = $1", payment_id)) == 1

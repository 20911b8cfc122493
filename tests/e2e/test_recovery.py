"""Losing a store mid-flight loses no money state (issue 12 §5; DESIGN §5), on the real services.

Three scenarios, each on the in-process stack of ``stack.py`` with live traffic when the store goes:

- Redis flushed: idempotency keys, webhook dedup keys, locks and the fraud/alerts tables vanish. What
  matters is re-derived from PostgreSQL (ids derive from the user and the key; the webhook log and
  the guarded transitions absorb a redelivery); ``payments replay`` rebuilds the tables.
- RabbitMQ restarted: durable quorum queues keep what was queued; a message whose ack was lost is
  redelivered and absorbed; the outbox publishes what the outage held back; deliveries refused with
  503 are sent again, as Cashfree would.
- PostgreSQL restarted: open transactions roll back whole; agents' messages wait in the retry tiers;
  the pool reconnects by itself.

Every invariant is read from the database (and the sandbox's ledger), never from logs. Each test has
a vhost and a Redis database of its own, so the DLQs, ``events.log`` and tables it checks hold only its
own traffic. The broker and PostgreSQL restarts concern the whole server: both helpers return only once
the service answers again, within a deadline.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any, Final

import pytest
from redis.asyncio import Redis

from payments.pipeline import bootstrap
from tests.e2e.isolation import emptied, own_vhost, rabbitmqctl
from tests.e2e.recovery_support import (
    answered,
    dead_letters,
    deliver,
    event_id,
    expected_status,
    handled,
    is_status,
    log_states,
    outbox_drained,
    over_refunded_payments,
    payment_row,
    pool_lends,
    recorded_attempts,
    replay_tables,
    restart_postgres,
    start_broker,
    status_of,
    succeeded,
    success_events,
    tables_caught_up,
)
from tests.e2e.test_replay_rebuilds_tables import RULES, table_contents
from tests.waiting import eventually

#: A Redis database of its own (the replay test has 14, the rest of the run 15), emptied first.
REDIS_URL: Final = "redis://127.0.0.1:6379/13"
WEBHOOK_AGENT: Final = "webhooks.process_webhooks"
SUCCESS_UPI, FAILURE_UPI = "testsuccess@gocash", "testfailure@gocash"


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with own_vhost("payments-recovery") as url:
        yield url


@pytest.fixture
async def own_redis() -> str:
    return await emptied(REDIS_URL)


@pytest.fixture
def environ(environ: dict[str, str], vhost_url: str, own_redis: str) -> dict[str, str]:
    return {
        **environ,
        "RABBITMQ_URL": vhost_url,
        "REDIS_URL": own_redis,
        # Rules that count, so the fraud tables have something to lose and to rebuild.
        "FRAUD_RULES": json.dumps(RULES),
        "ALERT_MIN_VOLUME": "2",
        # The tiers (30 s, 2 min, 10 min, 30 min in production) scaled to 0.6 s ... 36 s: like production's,
        # they outlast a restart of a few seconds, so a message failing through one never reaches a DLQ.
        "RETRY_DELAY_SCALE": "0.02",
        # A command that failed once is retried from its tier without its reply address, so its caller
        # waits out this timeout and gets 202 (then retries with its key): 5 s, not the run's 30 s.
        "COMMAND_REPLY_TIMEOUT_SECONDS": "5",
    }


# --- Redis flushed ------------------------------------------------------------------------------------


async def paid_by_webhook(stack: Any, user: str, address: str, key: str) -> dict[str, Any]:
    """A payment created with ``key`` and paid at the sandbox, whose webhook alone makes it SUCCESS."""
    created = await stack.create(user, key=key, client_ip=address)
    assert created.status == 201, await created.text()
    payment = dict(await created.json())
    await stack.pay(payment["paymentSessionId"], SUCCESS_UPI)
    await eventually(
        lambda: is_status(stack, payment["paymentId"], "SUCCESS"), timeout=30, what="the webhook's effect"
    )
    return {**payment, "user": user, "key": key, "address": address}


async def test_flushing_redis_mid_flight_loses_no_money_state_and_replay_rebuilds_the_tables(stack):
    run = uuid.uuid4().hex[:6]
    prefix = f"user-flush-{run}-"
    redis: Redis = stack.resources.redis
    before = [
        await paid_by_webhook(stack, f"{prefix}{n}", f"10.40.0.{n + 1}", uuid.uuid4().hex) for n in range(3)
    ]
    await eventually(lambda: tables_caught_up(stack, prefix), timeout=30, what="the tables to count them")
    tables_before = await table_contents(redis)
    assert len(tables_before) > 10
    refund_key = uuid.uuid4().hex
    refunded = before[0]

    async def live_traffic() -> list[dict[str, Any]]:
        made = []
        for n in range(3, 6):
            made.append(await paid_by_webhook(stack, f"{prefix}{n}", f"10.40.1.{n + 1}", uuid.uuid4().hex))
        response = await stack.refund(refunded["user"], refunded["paymentId"], "100.00", key=refund_key)
        assert response.status == 201, await response.text()
        return made

    traffic = asyncio.create_task(live_traffic())
    await eventually(
        lambda: stack.rows("SELECT 1 FROM payments WHERE user_id = $1", f"{prefix}3"),
        what="the live traffic to be under way",
    )
    await redis.flushdb()  # mid-flight: payments in creation, webhooks queued, locks held
    after = await traffic
    await stack.advance_sandbox_clock(61)  # the sandbox settles the refund and sends its webhook
    await eventually(
        lambda: is_status(stack, refunded["paymentId"], "PARTIALLY_REFUNDED"), timeout=30, what="the refund"
    )
    rebuilt = await _replay_rebuilds_the_tables(stack, prefix, tables_before)

    # A create retried with its Idempotency-Key after the flush finds the payment it made, and there is
    # still one row. The answer of a create that finished before the flush is derived again from
    # PostgreSQL (Redis forgot it); one that finished during the flush may have stored it afresh.
    for payment, forgotten in ((before[1], True), (after[0], False)):
        again = await stack.create(payment["user"], key=payment["key"], client_ip=payment["address"])
        assert again.status == 201, await again.text()
        assert (await again.json())["paymentId"] == payment["paymentId"]
        if forgotten:
            assert "Idempotent-Replayed" not in again.headers
        rows = await stack.rows(
            "SELECT payment_id FROM payments WHERE user_id = $1 AND idempotency_key = $2",
            payment["user"],
            payment["key"],
        )
        assert [row["payment_id"] for row in rows] == [payment["paymentId"]]
    # The same for the refund: one refund for its key, whatever Redis forgot.
    again = await stack.refund(refunded["user"], refunded["paymentId"], "100.00", key=refund_key)
    assert again.status == 201, await again.text()
    refunds = await stack.rows("SELECT refund_id FROM refunds WHERE payment_id = $1", refunded["paymentId"])
    assert [row["refund_id"] for row in refunds] == [(await again.json())["refundId"]]

    await _a_redelivered_webhook_changes_nothing(stack, before[2])

    # Locks: whatever the flush took mid-hold, the next call takes the lock afresh and lets it go.
    verified = await stack.verify(after[1]["user"], after[1]["paymentId"])
    assert verified.status == 200, await verified.text()
    assert (await verified.json())["status"] == "SUCCESS"
    assert await redis.exists(f"lock:payment:{after[1]['paymentId']}") == 0
    # The retried create was screened again, and counted nothing twice: the tables hold each id once.
    assert await table_contents(redis) == rebuilt


async def _a_redelivered_webhook_changes_nothing(stack: Any, payment: dict[str, Any]) -> None:
    """Cashfree re-sends a webhook already applied: Redis forgot its dedup key, the database did not."""
    [delivery] = [d for d in stack.sandbox.outbox.deliveries if d.order_id == payment["orderId"]]
    seen = await _effects_of(stack, payment)
    assert seen["log"] == [("SUCCESS", 0)]
    processed = handled(stack, WEBHOOK_AGENT)

    response = await stack.api.post(
        "/api/v1/webhooks/cashfree",
        data=delivery.body,
        headers=stack.signed(delivery.body, idempotency_key=delivery.idempotency_key),
    )

    assert response.status == 200
    assert (await response.json())["status"] == "accepted", "the flush made ingest forget the delivery"
    await eventually(lambda: handled(stack, WEBHOOK_AGENT) > processed, what="the agent to take it")
    assert await _effects_of(stack, payment) == seen


async def _effects_of(stack: Any, payment: dict[str, Any]) -> dict[str, Any]:
    payment_id = payment["paymentId"]
    log = await stack.rows(
        "SELECT event_id, processing_status, retry_count FROM webhook_logs WHERE order_id = $1",
        payment["orderId"],
    )
    # The payment's own events and its webhook's (invoices and emails follow in their own time).
    outbox = await stack.rows(
        "SELECT routing_key FROM outbox WHERE (payload->>'paymentId' = $1 AND routing_key LIKE 'payment.%') "
        "OR payload->>'eventId' = ANY($2::text[]) ORDER BY id",
        payment_id,
        [r["event_id"] for r in log],
    )
    row = await payment_row(stack, payment_id)
    return {
        "log": [(r["processing_status"], r["retry_count"]) for r in log],
        "outbox": [r["routing_key"] for r in outbox],
        "payment": (row["status"], row["gateway_payment_id"]),
        "attempts": await recorded_attempts(stack, payment_id),
    }


async def _replay_rebuilds_the_tables(
    stack: Any, prefix: str, tables_before: dict[str, object]
) -> dict[str, object]:
    """After the live traffic caught up on the flushed tables, replay from the start of ``events.log``:
    every table of before the flush is back, and nothing is counted twice. The rebuilt tables."""
    redis: Redis = stack.resources.redis
    await eventually(lambda: tables_caught_up(stack, prefix), timeout=30, what="the agents to catch up")
    live = await table_contents(redis)
    assert set(tables_before) - set(live), "the flush lost tables the live traffic did not rebuild"

    await replay_tables(stack)
    rebuilt = await table_contents(redis)

    assert set(tables_before) <= set(rebuilt)
    # And exactly: what the flushed run holds after the replay is what a replay into empty tables builds
    # (which test_replay_rebuilds_tables.py shows is what the live run builds): nothing counted twice.
    for key in rebuilt:
        await redis.delete(key)
    await replay_tables(stack)
    assert await table_contents(redis) == rebuilt
    return rebuilt


# --- RabbitMQ restarted -------------------------------------------------------------------------------

#: Each payment's attempts at the sandbox, in order; two of three plans end paid.
PLANS: Final = ((FAILURE_UPI, SUCCESS_UPI), (SUCCESS_UPI,), (FAILURE_UPI, FAILURE_UPI))


async def withheld_deliveries(stack: Any, count: int) -> tuple[list[dict[str, Any]], list[tuple[bytes, str]]]:
    """``count`` payments paid per ``PLANS`` with the sandbox's webhooks held back; and those webhooks
    (body, x-idempotency-key), one per attempt, for the test to deliver itself as Cashfree would."""
    await stack.put_faults({"withhold_webhooks": True})
    payments = []
    for n in range(count):
        created = await stack.create("user-broker-restart")
        assert created.status == 201, await created.text()
        payment = dict(await created.json())
        for upi in PLANS[n % len(PLANS)]:
            await stack.pay(payment["paymentSessionId"], upi)
        payments.append(payment)
    orders = {payment["orderId"] for payment in payments}
    bodies = [d.body for d in stack.sandbox.outbox.deliveries if d.order_id in orders]
    # Keys of our own, readable in the event ids (the sandbox's are base64, which they percent-encode).
    run = uuid.uuid4().hex[:8]
    return payments, [(body, f"evt-{run}-{n}") for n, body in enumerate(bodies)]


async def test_a_broker_restart_mid_flood_loses_no_webhook_answered_200_and_applies_each_once(stack):
    payments, deliveries = await withheld_deliveries(stack, 18)
    assert len(deliveries) == 30
    # Each Cashfree call the agent makes now takes a while, so the restart finds messages being handled.
    await stack.put_faults({"withhold_webhooks": True, "latency_ms": 400})
    answers: dict[str, list[int]] = {key: [] for _, key in deliveries}

    async def send(batch: list[tuple[bytes, str]]) -> None:
        for body, key in batch:
            answers[key].append(await deliver(stack, body, key))

    third = len(deliveries) // 3
    await send(deliveries[:third])
    assert all(answers[key] == [200] for _, key in deliveries[:third])
    stopping = asyncio.create_task(asyncio.to_thread(rabbitmqctl, "stop_app"))
    try:
        await send(deliveries[third : 2 * third])  # while the broker stops
        await stopping
        at_stop = await log_states(stack, [event_id(key) for key, codes in answers.items() if codes == [200]])
        await send(deliveries[2 * third :])  # while it is down
    finally:
        await stopping
        await start_broker()

    refused = [(body, key) for body, key in deliveries if answers[key][-1] != 200]
    assert refused, "the outage refused some deliveries"
    assert {code for _, key in refused for code in answers[key]} == {503}

    async def resent() -> bool:  # Cashfree's retries, once the broker is back
        for body, key in refused:
            if answers[key][-1] != 200:
                answers[key].append(await deliver(stack, body, key))
        return all(answers[key][-1] == 200 for _, key in refused)

    await eventually(resent, timeout=60, interval=0.5, what="the re-sent deliveries to be accepted")
    keys = [event_id(key) for _, key in deliveries]

    async def all_processed() -> bool:
        return await succeeded(stack, keys) == len(keys)

    await eventually(all_processed, timeout=90, what="every delivery processed")

    logs = await stack.rows(
        "SELECT event_id, processing_status FROM webhook_logs WHERE event_id = ANY($1::text[])", keys
    )
    assert sorted((row["event_id"], row["processing_status"]) for row in logs) == sorted(
        (key, "SUCCESS") for key in keys
    )
    started = await stack.rows(
        "SELECT payload->>'eventId' AS id, count(*) AS n FROM outbox WHERE routing_key = "
        "'webhook.cashfree.processing' AND payload->>'eventId' = ANY($1::text[]) GROUP BY 1",
        keys,
    )
    assert {row["id"]: row["n"] for row in started} == dict.fromkeys(keys, 1), "each event started once"
    await _payments_match_the_sandbox(stack, payments)
    await eventually(lambda: outbox_drained(stack), timeout=60, what="the outbox to drain")
    assert await dead_letters(stack) == {}
    # Each delivery was accepted exactly once: first time, or on a re-send after 503s.
    assert all(codes.count(200) == 1 and codes[-1] == 200 for codes in answers.values()), answers
    # The restart caught deliveries accepted but not yet processed (queued or being handled).
    assert at_stop.get("SUCCESS", 0) < sum(at_stop.values()), at_stop


async def _payments_match_the_sandbox(stack: Any, payments: list[dict[str, Any]]) -> None:
    ids = [payment["paymentId"] for payment in payments]
    for payment in payments:
        attempts = stack.sandbox_attempts(payment["orderId"])
        assert await status_of(stack, payment["paymentId"]) == expected_status(attempts)
        assert await recorded_attempts(stack, payment["paymentId"]) == set(attempts)
    paid = {
        p["paymentId"] for p in payments if expected_status(stack.sandbox_attempts(p["orderId"])) == "SUCCESS"
    }
    assert await success_events(stack, ids) == dict.fromkeys(paid, 1)


# --- PostgreSQL restarted -----------------------------------------------------------------------------


async def test_a_postgres_restart_mid_stream_leaves_no_half_written_money_state(stack):
    run = uuid.uuid4().hex[:6]
    journeys: list[dict[str, Any]] = [
        {
            "user": f"user-pg-{run}-{n % 4}",
            "upi": FAILURE_UPI if n % 3 == 2 else SUCCESS_UPI,
            "refund": n % 3 == 0,
        }
        for n in range(16)
    ]
    progress: list[int] = []
    gate = asyncio.Semaphore(4)

    async def journey(n: int, plan: dict[str, Any]) -> None:
        async with gate:
            key = uuid.uuid4().hex
            payment = await answered(lambda: stack.create(plan["user"], key=key), ok=201, what="the create")
            plan.update(paymentId=payment["paymentId"], orderId=payment["orderId"])
            await stack.pay(payment["paymentSessionId"], plan["upi"])  # Cashfree: no PostgreSQL in the way
            progress.append(n)
            if plan["refund"]:
                await _refund(stack, plan)

    stream = asyncio.gather(*(journey(n, plan) for n, plan in enumerate(journeys)))
    await eventually(lambda: len(progress) >= 3, timeout=30, what="the stream to be under way")
    assert len(progress) < len(journeys), "the restart comes while journeys are under way"
    await restart_postgres(deadline_seconds=60)
    await stream
    await stack.advance_sandbox_clock(61)  # the sandbox settles the refunds and sends their webhooks

    await eventually(lambda: _settled(stack, journeys), timeout=60, what="every payment and refund to settle")
    assert await over_refunded_payments(stack) == []
    # A captured payment names the attempt that captured it: the sandbox's one SUCCESS attempt.
    captured = {
        plan["paymentId"]: attempt
        for plan in journeys
        for attempt, status in stack.sandbox_attempts(plan["orderId"])
        if status == "SUCCESS"
    }
    assert set(captured) == {plan["paymentId"] for plan in journeys if plan["upi"] == SUCCESS_UPI}
    for payment_id, attempt in captured.items():
        assert (await payment_row(stack, payment_id))["gateway_payment_id"] == attempt
    assert await success_events(stack, [j["paymentId"] for j in journeys]) == dict.fromkeys(captured, 1)
    audited = await stack.rows(
        "SELECT resource_id, count(*) AS n FROM audit_logs WHERE action = 'payment.succeed' "
        "AND resource_id = ANY($1::text[]) GROUP BY 1",
        list(captured),
    )
    assert {row["resource_id"]: row["n"] for row in audited} == dict.fromkeys(captured, 1)
    chain = await bootstrap.run_audit_verify(stack.settings)
    assert chain.intact, chain
    await eventually(lambda: outbox_drained(stack), timeout=60, what="the outbox to drain")
    assert await dead_letters(stack) == {}
    # The stack's own pool came back by itself: its health probe and a whole new payment work...
    health = await stack.api.get("/health/database")
    assert health.status == 200, await health.text()
    assert (await stack.paid(f"user-pg-{run}-after"))["status"] == "SUCCESS"
    # ...and it still lends every connection but the outbox relay's LISTEN one: none was left unreleased.
    pool = stack.resources.pool
    if not await pool_lends(pool, pool.get_max_size() - 1, timeout=10):
        pool.terminate()  # or the stack's teardown (Pool.close) waits forever for the lost connection
        pytest.fail("a pool connection was never released after the restart (Pool.close would hang)")


async def _refund(stack: Any, plan: dict[str, Any]) -> None:
    """Once the payment is captured (verify, retried through the outage), refund part of it."""

    async def captured() -> bool:
        response = await stack.verify(plan["user"], plan["paymentId"])
        if response.status != 200:
            assert response.status in {202, 409, 503}, (response.status, await response.text())
            return False
        return bool((await response.json())["status"] == "SUCCESS")

    await eventually(captured, timeout=60, interval=0.2, what="the payment to be captured")
    key = uuid.uuid4().hex
    refund = await answered(
        lambda: stack.refund(plan["user"], plan["paymentId"], "100.00", key=key), ok=201, what="the refund"
    )
    plan["refundId"] = refund["refundId"]


async def _settled(stack: Any, journeys: list[dict[str, Any]]) -> bool:
    """Every payment where the sandbox's attempts put it, with exactly the sandbox's attempts, and every
    refund where the sandbox's ledger put it (a captured, refunded payment is PARTIALLY_REFUNDED)."""
    for plan in journeys:
        attempts = stack.sandbox_attempts(plan["orderId"])
        want = expected_status(attempts)
        if "refundId" in plan:
            gateway = stack.sandbox.ledger.refunds[(plan["orderId"], plan["refundId"])]
            rows = await stack.rows("SELECT status FROM refunds WHERE refund_id = $1", plan["refundId"])
            if [row["status"] for row in rows] != [gateway.status.value] or gateway.status.value != "SUCCESS":
                return False
            want = "PARTIALLY_REFUNDED"
        if await status_of(stack, plan["paymentId"]) != want:
            return False
        if await recorded_attempts(stack, plan["paymentId"]) != set(attempts):
            return False
    return True

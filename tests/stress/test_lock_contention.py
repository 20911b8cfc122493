"""Redis lock contention (issue 13 §2): hundreds of concurrent operations on one payment, all of them
wanting ``lock:payment:{id}``.

The payment was declined, dropped and then paid at the sandbox, and nobody has told us yet. At once:
half the operations are verifies (each Idempotency-Key sent twice), a quarter are refunds of the
full amount (each key twice, the keys all different), and a quarter are the gateway's webhooks for
the three attempts (half repeating their own ``x-idempotency-key``, half under keys of their own, so
the webhook agent applies them concurrently too). Refunds that ran before the payment was captured
are refused as not refundable, so those clients then ask again with new keys, at once.

It proves, from the database, the sandbox and the test's Redis database: exactly one SUCCESS
transition (one audit row, one ``payment.success`` event); one transaction row per gateway attempt;
exactly one full refund accepted, at the sandbox and in the database, and the rest refused with the
typed error body (400 ``refund_exceeds_balance`` or 409 ``payment_not_refundable``); every repeat of
a key answered exactly as the first; no 5xx anywhere; every webhook answered 200 and processed once;
the lock released at the end; and, once the gateway settles the refund, the payment REFUNDED once.
``tests/e2e/test_payment_flow.py`` has the 100-verify version this goes beyond.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import aiohttp
import pytest
from redis.asyncio import Redis

from payments.bridges.redis.keys import payment_lock
from tests.e2e.recovery_support import deliver
from tests.e2e.stack import Stack
from tests.stress.conftest import STRESS_REDIS_URL
from tests.stress.support import (
    Answer,
    Webhook,
    attempted,
    concurrently,
    created,
    finished_states,
    forms,
    sandbox_attempts,
    settled,
    withheld_webhooks,
)
from tests.waiting import eventually

AMOUNT = "1000.00"
#: How a refund may be refused under contention, by status and code.
REFUSALS = {(400, "refund_exceeds_balance"), (409, "payment_not_refundable")}


@dataclass(frozen=True)
class Contention:
    #: Concurrent requests on the one payment.
    operations: int

    @property
    def verifies(self) -> int:
        return self.operations // 2

    @property
    def refunds(self) -> int:
        return self.operations // 4

    @property
    def webhooks(self) -> int:
        return self.operations - self.verifies - self.refunds


@dataclass(frozen=True)
class Outcome:
    kind: str  #: verify, refund or webhook
    key: str
    answer: Answer | None = None  #: verifies and refunds
    status: int | None = None  #: webhooks


@dataclass(frozen=True)
class Crowd:
    """The clients of the one payment: its owner's verifies and refunds, and the gateway's webhooks."""

    stack: Stack
    user: str
    payment: dict[str, str]

    async def verify(self, key: str) -> Outcome:
        async def send() -> aiohttp.ClientResponse:
            body = {"paymentId": self.payment["paymentId"]}
            headers = self.stack.headers(self.user, key=key)
            return await self.stack.api.post("/api/v1/payments/verify", json=body, headers=headers)

        return Outcome("verify", key, await settled(send, what="a verify"))

    async def refund(self, key: str) -> Outcome:
        def send() -> Awaitable[aiohttp.ClientResponse]:
            return self.stack.refund(self.user, self.payment["paymentId"], AMOUNT, key=key)

        return Outcome("refund", key, await settled(send, what="a refund"))

    async def webhook(self, event: Webhook) -> Outcome:
        return Outcome("webhook", event.key, status=await deliver(self.stack, event.body, event.key))


@pytest.mark.parametrize("load", forms(Contention(operations=200), Contention(operations=1_000)))
async def test_concurrent_verifies_refunds_and_webhooks_on_one_payment_make_one_transition(
    stack: Stack, load: Contention
) -> None:
    rng = random.Random(200)
    await stack.put_faults({"withhold_webhooks": True})  # the test delivers them, in the crowd
    user = f"stress-lock-{uuid.uuid4().hex[:8]}"
    payment = await created(stack, user, amount=AMOUNT)
    await attempted(stack, payment, ["FAILED", "USER_DROPPED", "SUCCESS"])
    events = withheld_webhooks(stack, {payment["orderId"]})
    assert len(events) == 3
    crowd, run = Crowd(stack, user, payment), uuid.uuid4().hex[:8]
    webhooks = [
        # Odd ones are the same events again under keys of their own: distinct deliveries to apply.
        events[n % 3] if n % 2 == 0 else Webhook(events[n % 3].body, f"contention-{run}-{n}")
        for n in range(load.webhooks)
    ]
    operations: list[Callable[[], Awaitable[Outcome]]] = [
        *(lambda k=f"verify-{run}-{n // 2}": crowd.verify(k) for n in range(load.verifies)),
        *(lambda k=f"refund-{run}-{n // 2}": crowd.refund(k) for n in range(load.refunds)),
        *(lambda e=event: crowd.webhook(e) for event in webhooks),
    ]
    rng.shuffle(operations)

    outcomes = await concurrently(operations, limit=len(operations))
    # Clients told "not refundable" came before the capture; that answer is final for its key, so they
    # ask again, at once, with new keys.
    late = sorted({o.key for o in outcomes if o.answer and o.answer.error_code == "payment_not_refundable"})
    retried = await concurrently([lambda k=f"{key}-again": crowd.refund(k) for key in late], limit=100)

    everything = [*outcomes, *retried]
    seen = Counter(s for o in everything for s in (o.answer.statuses if o.answer else (o.status,)))
    assert all(status is not None and status < 500 for status in seen), f"no 5xx: {seen}"
    assert {o.status for o in outcomes if o.kind == "webhook"} == {200}
    _assert_keys_answer_alike(everything)
    assert {o.answer.json()["status"] for o in outcomes if o.kind == "verify" and o.answer} == {"SUCCESS"}
    _assert_one_refund_accepted(everything)
    await _assert_one_transition(stack, payment)
    redis = Redis.from_url(STRESS_REDIS_URL)
    try:
        assert not await redis.exists(payment_lock(payment["paymentId"])), "the lock is released"
    finally:
        await redis.aclose()
    event_ids = list({webhook.event_id for webhook in webhooks})
    states: dict[str, int] = await eventually(
        lambda: finished_states(stack, event_ids), timeout=60, interval=0.2, what="every webhook processed"
    )
    assert states == {"SUCCESS": len(event_ids)}, "each distinct delivery processed once"
    await _assert_refunded_once(stack, payment)


def _assert_keys_answer_alike(outcomes: list[Outcome]) -> None:
    """Every request under one key got the same final answer, byte for byte: one ran, the rest replayed."""
    answers: dict[str, set[tuple[int, bytes]]] = {}
    for outcome in outcomes:
        if outcome.answer is not None:
            answers.setdefault(outcome.key, set()).add((outcome.answer.status, outcome.answer.body))
    assert all(len(seen) == 1 for seen in answers.values()), "a repeated key replays its first answer"


def _assert_one_refund_accepted(outcomes: list[Outcome]) -> None:
    final = {o.key: o.answer for o in outcomes if o.kind == "refund" and o.answer}
    accepted = [answer for answer in final.values() if answer.status == 201]
    statuses = Counter(answer.status for answer in final.values())
    assert len(accepted) == 1, f"exactly one full refund is accepted: {statuses}"
    assert accepted[0].json()["amount"] == AMOUNT
    for answer in final.values():
        if answer.status != 201:
            assert (answer.status, answer.error_code) in REFUSALS, answer
            assert set(answer.json()["error"]) == {"code", "message", "requestId"}


async def _assert_one_transition(stack: Stack, payment: dict[str, str]) -> None:
    payment_id = payment["paymentId"]
    [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment_id)
    assert row["status"] == "SUCCESS"
    succeeded = await stack.rows(
        "SELECT 1 FROM audit_logs WHERE resource_id = $1 AND action = 'payment.succeed'", payment_id
    )
    assert len(succeeded) == 1, "one SUCCESS transition"
    assert await _events(stack, "payment.success", payment_id) == 1
    recorded = await stack.rows(
        "SELECT provider_transaction_id, status FROM transactions WHERE payment_id = $1", payment_id
    )
    assert Counter((r["provider_transaction_id"], r["status"]) for r in recorded) == Counter(
        sandbox_attempts(stack, payment["orderId"])
    ), "one transaction row per gateway attempt"
    refunds = await stack.rows("SELECT amount FROM refunds WHERE payment_id = $1", payment_id)
    assert [r["amount"] for r in refunds] == [Decimal(AMOUNT)], "one refund row, of the full amount"
    ledger = stack.sandbox.ledger
    at_gateway = [
        ledger.refunds[payment["orderId"], r].amount for r in ledger.orders[payment["orderId"]].refund_ids
    ]
    assert at_gateway == [Decimal(AMOUNT)], "one refund at the gateway"


async def _events(stack: Stack, routing_key: str, payment_id: str) -> int:
    rows = await stack.rows(
        "SELECT count(*) AS n FROM outbox WHERE routing_key = $1 AND payload->>'paymentId' = $2",
        routing_key,
        payment_id,
    )
    return int(rows[0]["n"])


async def _assert_refunded_once(stack: Stack, payment: dict[str, str]) -> None:
    """The gateway settles the refund: the payment is REFUNDED, once, for no more than it captured."""
    await stack.put_faults({})  # its refund webhook is the gateway's word on the refund
    await stack.advance_sandbox_clock(61)
    payment_id = payment["paymentId"]

    async def refunded() -> bool:
        [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment_id)
        return bool(row["status"] == "REFUNDED")

    await eventually(refunded, timeout=30, what="the payment to be refunded")
    assert await _events(stack, "payment.refunded", payment_id) == 1
    [total] = await stack.rows(
        "SELECT sum(amount) AS refunded FROM refunds WHERE payment_id = $1 AND status = 'SUCCESS'", payment_id
    )
    assert total["refunded"] == Decimal(AMOUNT)

"""What the stress tests share: their two scales, bounded concurrency, a client that retries as the
API documents, payments whose attempts were made at the sandbox, and the webhooks Cashfree would send
for them."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
import pytest
from _pytest.mark.structures import ParameterSet

from payments.bridges.cashfree.webhooks import parse_webhook
from tests.e2e.recovery_support import expected_status, log_states
from tests.e2e.stack import APP_ID, SECRET, Stack
from tests.waiting import eventually

T = TypeVar("T")

#: The UPI test instruments that decide an attempt at once (sandbox ``instruments.py``).
DECIDING_UPI: Final = {"SUCCESS": "testsuccess@gocash", "FAILED": "testfailure@gocash"}
#: A VPA the sandbox leaves PENDING until ``POST /pg/simulate`` decides it: how a customer drops out.
UNDECIDED_UPI: Final = "someone@okbank"
#: Calls to the sandbox's own API (``/pg/simulate``) carry the merchant's credentials.
SANDBOX_CREDENTIALS: Final = {"x-client-id": APP_ID, "x-client-secret": SECRET, "x-api-version": "2025-01-01"}
#: How long one client keeps asking (202 and ``request_in_flight`` say "ask again").
ANSWER_DEADLINE_SECONDS: Final = 120.0


def forms(short: T, long: T, *, short_timeout: int = 120, long_timeout: int = 1800) -> list[ParameterSet]:
    """The test's two scales: the short form runs in ``make test``, the long one (slow) in ``make stress``."""
    return [
        pytest.param(short, id="short", marks=pytest.mark.timeout(short_timeout)),
        pytest.param(long, id="long", marks=[pytest.mark.slow, pytest.mark.timeout(long_timeout)]),
    ]


async def concurrently(calls: Sequence[Callable[[], Awaitable[T]]], *, limit: int) -> list[T]:
    """Run every call at once, at most ``limit`` in flight (a client's connection pool), in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


@dataclass(frozen=True)
class Answer:
    """A request's final answer, and every status the client saw on the way to it."""

    statuses: tuple[int, ...]
    status: int
    body: bytes
    replayed: bool

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str | None:
        return error_code(self.body)


def error_code(body: bytes) -> str | None:
    """The ``error.code`` of the one error body, or None for anything else."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error.get("code") if isinstance(error, dict) else None


async def settled(send: Callable[[], Awaitable[aiohttp.ClientResponse]], *, what: str) -> Answer:
    """Send until the answer is final, as the API tells a client to: 202 (the command's reply was late)
    and 409 ``request_in_flight`` (the same key is being served) are asked again, with the same key."""
    seen: list[int] = []

    async def attempt() -> Answer | None:
        response = await send()
        body = await response.read()
        seen.append(response.status)
        if response.status == 202 or error_code(body) == "request_in_flight":
            return None
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return Answer(tuple(seen), response.status, body, replayed)

    return await eventually(attempt, timeout=ANSWER_DEADLINE_SECONDS, interval=0.1, what=what)


async def created(stack: Stack, user_id: str, *, amount: str = "499.00") -> dict[str, Any]:
    """A payment created through the API (201, after any documented retry)."""
    key = uuid.uuid4().hex
    answer = await settled(lambda: stack.create(user_id, key=key, amount=amount), what="a create")
    assert answer.status == 201, answer
    return dict(answer.json())


# --- Attempts at the sandbox, and the webhooks it would send ---------------------------------------


#: How an attempt fails: mostly declined, sometimes the customer drops out.
FAILURES: Final = ("FAILED", "FAILED", "FAILED", "USER_DROPPED")


def attempt_plan(rng: random.Random) -> list[str]:
    """The outcomes of one payment's attempts: about 70% are paid after 1 to 3 failures, the rest fail
    2 to 4 times (three attempts a payment on average)."""
    paid = rng.random() < 0.7
    failures = [rng.choice(FAILURES) for _ in range(rng.randint(1, 3) if paid else rng.randint(2, 4))]
    return [*failures, "SUCCESS"] if paid else failures


async def attempt(
    stack: Stack, session: aiohttp.ClientSession, payment: dict[str, Any], outcome: str
) -> None:
    """One attempt at the sandbox for ``payment`` that ends in ``outcome``."""
    if outcome in DECIDING_UPI:
        await stack.pay(payment["paymentSessionId"], DECIDING_UPI[outcome])
        return
    await stack.pay(payment["paymentSessionId"], UNDECIDED_UPI)
    pending = stack.sandbox.ledger.orders[payment["orderId"]].attempt_ids[-1]
    simulation = {"payment_status": outcome}
    body = {"entity": "PAYMENTS", "entity_id": pending, "entity_simulation": simulation}
    async with session.post(f"{stack.sandbox_url}/pg/simulate", json=body, headers=SANDBOX_CREDENTIALS) as r:
        assert r.status == 200, await r.text()


async def attempted(stack: Stack, payment: dict[str, Any], outcomes: Sequence[str]) -> None:
    """Make ``payment``'s attempts in order (an order takes one attempt after another)."""
    async with aiohttp.ClientSession() as session:
        for outcome in outcomes:
            await attempt(stack, session, payment, outcome)


def sandbox_attempts(stack: Stack, order_id: str) -> list[tuple[str, str]]:
    """(cf_payment_id, status) of the order's attempts, oldest first; by the order's own list, so
    thousands of look-ups stay linear (``Stack.sandbox_attempts`` scans every attempt)."""
    ledger = stack.sandbox.ledger
    return [(cf_id, ledger.attempts[cf_id].status.value) for cf_id in ledger.orders[order_id].attempt_ids]


def expected(stack: Stack, order_id: str) -> str:
    """The payment state the sandbox's attempts for the order call for."""
    return expected_status(sandbox_attempts(stack, order_id))


async def with_attempts(
    stack: Stack, plans: Sequence[Sequence[str]]
) -> tuple[list[dict[str, Any]], list[Webhook]]:
    """One payment per plan, created through the API and its attempts made at the sandbox in the plan's
    order, concurrently across payments; and the webhooks the sandbox held back for them (one each)."""
    await stack.put_faults({"withhold_webhooks": True})  # the test delivers them, not the sandbox
    user = f"stress-{uuid.uuid4().hex[:8]}"
    payments = await concurrently([lambda: created(stack, user) for _ in plans], limit=50)
    await concurrently(
        [lambda p=p, o=o: attempted(stack, p, o) for p, o in zip(payments, plans, strict=True)], limit=50
    )
    webhooks = withheld_webhooks(stack, {payment["orderId"] for payment in payments})
    assert len(webhooks) == sum(map(len, plans)), "one webhook per attempt"
    return payments, webhooks


@dataclass(frozen=True)
class Webhook:
    """One event as Cashfree delivers it: the exact body and its ``x-idempotency-key``."""

    body: bytes
    key: str

    @property
    def event_id(self) -> str:
        """The ``webhook_logs.event_id`` ingest derives from the delivery (the product's own rule)."""
        return parse_webhook(self.body, {"x-idempotency-key": self.key}).dedup_key


def withheld_webhooks(stack: Stack, order_ids: set[str]) -> list[Webhook]:
    """The payment webhooks the sandbox holds back (``withhold_webhooks``) for these orders."""
    return [
        Webhook(delivery.body, delivery.idempotency_key)
        for delivery in stack.sandbox.outbox.deliveries
        if delivery.order_id in order_ids and delivery.event_type.startswith("PAYMENT_")
    ]


async def finished_states(stack: Stack, event_ids: list[str]) -> dict[str, int] | None:
    """The events' webhook log states once none is missing, waiting or being processed (else None)."""
    states = {state: n for state, n in (await log_states(stack, event_ids)).items() if n}
    return None if {"NONE", "RECEIVED", "PROCESSING"} & set(states) else states

"""Concurrent payments (issue 13 §2): many users create payments at the same moment, through the whole
product (HTTP -> command -> payments agent -> Cashfree sandbox -> PostgreSQL).

It proves, from the database and the sandbox's ledger, that under that load every create still gets
its payment (201, after the answers the API documents as "ask again": 202 when the reply was late,
409 ``request_in_flight`` for a key being served); that there is exactly one payment row and one
gateway order per (user, Idempotency-Key), for the amount asked; that each user's history holds
exactly their own payments and another user's payment does not exist for them; and that nothing
answers 5xx. One request in ten is sent twice at once with its key, as a client retrying over a flaky
network does, so the one-per-key rule is tested under the same load.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest

from payments.domain.payment.service import gateway_customer_id
from tests.e2e.stack import Stack
from tests.stress.support import Answer, concurrently, forms, settled


@dataclass(frozen=True)
class Load:
    users: int
    payments_per_user: int
    #: Client connections: how many requests are in flight at once.
    connections: int = 100


@dataclass(frozen=True)
class Create:
    user_id: str
    key: str
    amount: str


@pytest.mark.parametrize(
    "load", forms(Load(users=50, payments_per_user=10), Load(users=200, payments_per_user=10))
)
async def test_concurrent_creates_make_one_payment_and_one_gateway_order_per_user_and_key(
    stack: Stack, load: Load
) -> None:
    rng = random.Random(13)
    run = uuid.uuid4().hex[:8]
    users = [f"stress-{run}-u{n}" for n in range(load.users)]
    creates = [
        Create(user, f"key-{n}", f"{Decimal(rng.randint(100, 99_999)) / 100:.2f}")
        for user in users
        for n in range(load.payments_per_user)
    ]
    asked = {(c.user_id, c.key): c.amount for c in creates}
    sent = creates + [create for create in creates if rng.random() < 0.1]
    rng.shuffle(sent)

    answers = await concurrently(
        [lambda c=create: _create(stack, c) for create in sent], limit=load.connections
    )

    seen = Counter(status for answer in answers for status in answer.statuses)
    assert set(seen) <= {201, 202, 409}, f"only 201 and the documented 'ask again' answers: {seen}"
    by_key: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for create, answer in zip(sent, answers, strict=True):
        assert answer.status == 201, (create, answer)
        body = answer.json()
        by_key.setdefault((create.user_id, create.key), set()).add(
            (body["paymentId"], body["userId"], body["amount"])
        )
    for (user_id, key), bodies in by_key.items():
        [(_, owner, amount)] = bodies  # every answer for one key names the same payment
        assert (owner, amount) == (user_id, asked[user_id, key])

    payments = await _payments_of(stack, run)
    assert Counter((row["user_id"], row["idempotency_key"]) for row in payments) == Counter(list(asked)), (
        "exactly one payment row per (user, key)"
    )
    for row in payments:
        assert row["amount"] == Decimal(asked[str(row["user_id"]), str(row["idempotency_key"])])
        assert row["status"] == "PENDING", "its gateway order is open"
    assert {row["payment_id"] for row in payments} == {p for bodies in by_key.values() for p, _, _ in bodies}
    _assert_one_gateway_order_each(stack, users, payments)
    await _assert_each_user_sees_only_their_own(stack, users, payments)


async def _create(stack: Stack, create: Create) -> Answer:
    return await settled(
        lambda: stack.create(create.user_id, key=create.key, amount=create.amount), what="a create"
    )


async def _payments_of(stack: Stack, run: str) -> list[dict[str, object]]:
    rows = await stack.rows(
        "SELECT payment_id, order_id, user_id, idempotency_key, amount, status, gateway_order_id "
        "FROM payments WHERE user_id LIKE $1",
        f"stress-{run}-%",
    )
    return [dict(row) for row in rows]


def _assert_one_gateway_order_each(stack: Stack, users: list[str], payments: list[dict[str, object]]) -> None:
    """The sandbox holds one order per payment, for its amount, and none besides for these users."""
    customers = {gateway_customer_id(user) for user in users}
    orders = [o for o in stack.sandbox.ledger.orders.values() if o.customer.get("customer_id") in customers]
    assert Counter(o.order_id for o in orders) == Counter(str(p["order_id"]) for p in payments)
    amounts = {str(p["order_id"]): p["amount"] for p in payments}
    assert all(order.amount == amounts[order.order_id] for order in orders)
    assert all(p["gateway_order_id"] for p in payments)


async def _assert_each_user_sees_only_their_own(
    stack: Stack, users: list[str], payments: list[dict[str, object]]
) -> None:
    owned: dict[str, set[str]] = {user: set() for user in users}
    for row in payments:
        owned[str(row["user_id"])].add(str(row["payment_id"]))

    async def history(user: str) -> set[str]:
        response = await stack.api.get("/api/v1/payments/history?limit=100", headers=stack.headers(user))
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["nextCursor"] is None
        return {payment["paymentId"] for payment in body["payments"]}

    async def peek(user: str, neighbour: str) -> int:
        someone_elses = sorted(owned[neighbour])[0]
        response = await stack.api.get(f"/api/v1/payments/{someone_elses}", headers=stack.headers(user))
        return int(response.status)

    histories = await concurrently([lambda u=user: history(u) for user in users], limit=50)
    assert dict(zip(users, histories, strict=True)) == owned
    neighbours = users[1:] + users[:1]
    peeks = await concurrently(
        [lambda u=u, n=n: peek(u, n) for u, n in zip(users, neighbours, strict=True)], limit=50
    )
    assert set(peeks) == {404}, "another user's payment does not exist for them"

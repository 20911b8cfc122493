"""An in-memory ``PaymentRepository`` with the PostgreSQL repository's rules.

Writes are staged and reach the store only when the unit of work commits. Like the SQL: a payment id
is inserted once (a second ``add`` is False), order ids are unique, ``save`` succeeds only if the
stored row still has the version read and a state the trigger may leave, and an attempt is recorded
once per gateway attempt id (True again only when its status changes). ``get(for_update=True)`` takes a
per-payment lock held until the unit of work ends, as ``SELECT ... FOR UPDATE`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from payments.domain.errors import ConcurrentTransition, Conflict, NotFound
from payments.domain.gateway import GatewayAttempt
from payments.domain.payment.model import Payment
from payments.domain.payment.repository import HistoryQuery
from payments.domain.payment.states import PaymentState, PaymentTrigger, sources_of

_EXPIRABLE = {PaymentState.CREATED, PaymentState.PENDING, PaymentState.FAILED}


@dataclass
class PaymentTables:
    """The committed payments and attempts every unit of work shares."""

    payments: dict[str, Payment] = field(default_factory=dict)
    #: attempt id -> (payment id, attempt)
    attempts: dict[str, tuple[str, GatewayAttempt]] = field(default_factory=dict)
    row_locks: dict[str, asyncio.Lock] = field(default_factory=dict)


class InMemoryPaymentRepository:
    def __init__(self, tables: PaymentTables) -> None:
        self._tables = tables
        self._payments: dict[str, Payment] = {}
        self._attempts: dict[str, tuple[str, GatewayAttempt]] = {}
        self._held: list[asyncio.Lock] = []

    async def add(self, payment: Payment) -> bool:
        if payment.payment_id in self._visible():
            return False
        if any(p.order_id == payment.order_id for p in self._visible().values()):
            raise Conflict(f"order id {payment.order_id} is taken")
        self._payments[payment.payment_id] = payment
        return True

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment:
        if for_update:
            lock = self._tables.row_locks.setdefault(payment_id, asyncio.Lock())
            if lock not in self._held:
                await lock.acquire()
                self._held.append(lock)
        payment = self._visible().get(payment_id)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        return payment

    async def get_by_order_id(self, order_id: str) -> Payment:
        for payment in self._visible().values():
            if payment.order_id == order_id:
                return payment
        raise NotFound(f"no payment for order {order_id}")

    async def save(self, before: Payment, after: Payment, trigger: PaymentTrigger | None) -> None:
        current = self._visible().get(before.payment_id)
        allowed = sources_of(trigger) if trigger is not None else {before.status}
        if current is None or current.version != before.version or current.status not in allowed:
            raise ConcurrentTransition(f"payment {before.payment_id} changed concurrently")
        self._payments[after.payment_id] = after

    async def record_attempt(self, payment_id: str, attempt: GatewayAttempt, *, now: datetime) -> bool:
        known = {**self._tables.attempts, **self._attempts}.get(attempt.attempt_id)
        if known is not None and known[1].status == attempt.status:
            return False
        self._attempts[attempt.attempt_id] = (payment_id, attempt)
        return True

    async def attempts(self, payment_id: str) -> Sequence[GatewayAttempt]:
        every = {**self._tables.attempts, **self._attempts}
        return [attempt for owner, attempt in every.values() if owner == payment_id]

    async def history(self, query: HistoryQuery) -> Sequence[Payment]:
        rows = [p for p in self._visible().values() if _matches(p, query)]
        rows.sort(key=lambda p: (p.created_at, p.payment_id), reverse=True)
        return rows[: query.limit]

    async def due_for_expiry(self, *, now: datetime, limit: int) -> Sequence[Payment]:
        due = [
            p
            for p in self._visible().values()
            if p.status in _EXPIRABLE and p.order_expires_at is not None and p.order_expires_at < now
        ]
        return sorted(due, key=lambda p: p.order_expires_at or now)[:limit]

    def _visible(self) -> dict[str, Payment]:
        return {**self._tables.payments, **self._payments}

    def commit(self) -> None:
        self._tables.payments.update(self._payments)
        self._tables.attempts.update(self._attempts)

    def release(self) -> None:
        for lock in self._held:
            lock.release()
        self._held.clear()


def _matches(payment: Payment, query: HistoryQuery) -> bool:
    if query.user_id is not None and payment.user_id != query.user_id:
        return False
    if query.status is not None and payment.status is not query.status:
        return False
    if query.created_from is not None and payment.created_at < query.created_from:
        return False
    if query.created_to is not None and payment.created_at >= query.created_to:
        return False
    return query.after is None or (payment.created_at, payment.payment_id) < query.after

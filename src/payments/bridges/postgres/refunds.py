"""Refunds in PostgreSQL (``RefundRepository``).

Transitions are guarded in SQL: the UPDATE names the states the trigger may leave and the version it
read (STYLE §5). The column ``provider_refund_id`` holds the model's ``gateway_refund_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from payments.bridges.postgres.pool import Connection
from payments.domain.errors import ConcurrentTransition, Conflict, NotFound
from payments.domain.gateway import RefundSpeed
from payments.domain.money import Money
from payments.domain.refund.model import Refund
from payments.domain.refund.states import RefundState, RefundTrigger, sources_of

#: The UNIQUE (payment_id, idempotency_key) constraint of 0002_refunds.sql.
IDEMPOTENCY_CONSTRAINT: Final = "refunds_payment_idempotency_key"

_COLUMNS: Final = """
    refund_id, payment_id, order_id, amount, currency, reason, status, speed, provider_refund_id,
    status_description, idempotency_key, retry_count, version, created_at, updated_at, processed_at
"""

#: A new refund; a second insert with the same refund id (a retried command) changes nothing.
INSERT_REFUND: Final = """
INSERT INTO refunds (
    refund_id, payment_id, order_id, amount, currency, reason, status, speed, provider_refund_id,
    status_description, idempotency_key, retry_count, version, created_at, updated_at, processed_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (refund_id) DO NOTHING
RETURNING refund_id
"""

#: One refund by id.
SELECT_REFUND: Final = f"SELECT {_COLUMNS} FROM refunds WHERE refund_id = $1"  # noqa: S608

#: A payment's refunds, oldest first (the id breaks ties so the order is stable).
SELECT_FOR_PAYMENT: Final = f"""
SELECT {_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, refund_id
"""  # noqa: S608

#: Write a change only if the row is still in a state the trigger may leave and at the version read.
UPDATE_REFUND_GUARDED: Final = """
UPDATE refunds
SET status = $3, provider_refund_id = $4, status_description = $5, retry_count = $6, version = $7,
    updated_at = $8, processed_at = $9
WHERE refund_id = $1 AND status = ANY($2::text[]) AND version = $10
"""

#: Refunds the gateway has not settled and nobody touched since $1, oldest first (the status poll;
#: served by refunds_unsettled_updated_at_idx).
SELECT_UNSETTLED: Final = f"""
SELECT {_COLUMNS} FROM refunds
WHERE status IN ('INITIATED', 'PROCESSING') AND updated_at < $1
ORDER BY updated_at, refund_id
LIMIT $2
"""  # noqa: S608


class PgRefundRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, refund: Refund) -> bool:
        """Insert ``refund``; False if its id exists, ``Conflict`` if its payment already has a
        refund with the same idempotency key under another id."""
        try:
            # A savepoint, so a refused key leaves the caller's transaction usable.
            async with self._connection.transaction():
                inserted = await self._connection.fetchval(INSERT_REFUND, *_insert_values(refund))
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != IDEMPOTENCY_CONSTRAINT:
                raise
            raise Conflict(
                f"payment {refund.payment_id} already has a refund with idempotency key "
                f"{refund.idempotency_key}"
            ) from error
        return inserted is not None

    async def get(self, refund_id: str) -> Refund:
        row = await self._connection.fetchrow(SELECT_REFUND, refund_id)
        if row is None:
            raise NotFound(f"refund {refund_id} not found")
        return _refund(row)

    async def for_payment(self, payment_id: str) -> Sequence[Refund]:
        rows = await self._connection.fetch(SELECT_FOR_PAYMENT, payment_id)
        return [_refund(row) for row in rows]

    async def save(self, before: Refund, after: Refund, trigger: RefundTrigger | None) -> None:
        allowed = sources_of(trigger) if trigger is not None else {before.status}
        status = await self._connection.execute(
            UPDATE_REFUND_GUARDED,
            after.refund_id,
            [state.value for state in allowed],
            after.status.value,
            after.gateway_refund_id,
            after.status_description,
            after.retry_count,
            after.version,
            after.updated_at,
            after.processed_at,
            before.version,
        )
        if status != "UPDATE 1":
            raise ConcurrentTransition(f"refund {after.refund_id} changed concurrently")

    async def unsettled(self, *, updated_before: datetime, limit: int) -> Sequence[Refund]:
        rows = await self._connection.fetch(SELECT_UNSETTLED, updated_before, limit)
        return [_refund(row) for row in rows]


def _insert_values(refund: Refund) -> tuple[object, ...]:
    """The refund's columns in INSERT_REFUND's order."""
    return (
        refund.refund_id,
        refund.payment_id,
        refund.order_id,
        refund.amount.amount,
        refund.amount.currency,
        refund.reason,
        refund.status.value,
        refund.speed.value,
        refund.gateway_refund_id,
        refund.status_description,
        refund.idempotency_key,
        refund.retry_count,
        refund.version,
        refund.created_at,
        refund.updated_at,
        refund.processed_at,
    )


def _refund(row: asyncpg.Record) -> Refund:
    return Refund(
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], row["currency"]),
        reason=row["reason"],
        status=RefundState(row["status"]),
        speed=RefundSpeed(row["speed"]),
        gateway_refund_id=row["provider_refund_id"],
        status_description=row["status_description"],
        idempotency_key=row["idempotency_key"],
        retry_count=row["retry_count"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        processed_at=row["processed_at"],
    )

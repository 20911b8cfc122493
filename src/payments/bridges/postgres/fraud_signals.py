"""Fraud signals in PostgreSQL (``FraudSignalRepository``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pool import Connection
from payments.domain.fraud.signals import FraudSignal, Verdict

INSERT_SIGNAL: Final = """
INSERT INTO fraud_signals (signal_id, rule, verdict, score, subject_kind, subject, payment_id, user_id,
                           observed, threshold, window_seconds, details, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13)
ON CONFLICT (signal_id) DO NOTHING
"""

_COLUMNS: Final = """
    rule, verdict, score, subject_kind, subject, payment_id, user_id, observed, threshold, window_seconds,
    details::text AS details, created_at
"""
SELECT_FOR_PAYMENT: Final = (
    f"SELECT {_COLUMNS} FROM fraud_signals WHERE payment_id = $1 ORDER BY created_at, rule"  # noqa: S608
)
SELECT_NEWEST: Final = f"SELECT {_COLUMNS} FROM fraud_signals ORDER BY created_at DESC, signal_id LIMIT $1"  # noqa: S608


class PgFraudSignalRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, signal: FraudSignal) -> bool:
        status = await self._connection.execute(
            INSERT_SIGNAL,
            signal.signal_id,
            signal.rule,
            signal.verdict.value,
            signal.score,
            signal.subject_kind,
            signal.subject,
            signal.payment_id,
            signal.user_id,
            signal.observed,
            signal.threshold,
            signal.window_seconds,
            to_json(signal.details),
            signal.created_at,
        )
        return status == "INSERT 0 1"

    async def for_payment(self, payment_id: str) -> Sequence[FraudSignal]:
        return [_signal(row) for row in await self._connection.fetch(SELECT_FOR_PAYMENT, payment_id)]

    async def recent(self, *, limit: int) -> Sequence[FraudSignal]:
        return [_signal(row) for row in await self._connection.fetch(SELECT_NEWEST, limit)]


def _signal(row: asyncpg.Record) -> FraudSignal:
    return FraudSignal(
        rule=row["rule"],
        verdict=Verdict(row["verdict"]),
        score=row["score"],
        subject_kind=row["subject_kind"],
        subject=row["subject"],
        payment_id=row["payment_id"],
        user_id=row["user_id"],
        observed=row["observed"],
        threshold=row["threshold"],
        window_seconds=row["window_seconds"],
        details=from_json(row["details"]),
        created_at=row["created_at"],
    )

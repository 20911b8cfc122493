"""Admin alerts in PostgreSQL (``AlertRepository``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Final

import asyncpg

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pool import Connection
from payments.domain.alerts.model import Alert, Severity, StoredAlert

#: Serialises raisers of one alert key until their transactions end, so the cooldown check and the
#: insert that follows it cannot interleave between workers.
LOCK_ALERT_KEY: Final = "SELECT pg_advisory_xact_lock(hashtextextended('alert:' || $1, 0))"

#: Insert unless an alert of the same key was raised within the cooldown of this one, before or after it
#: (workers race, so a later-dated alert may commit first).
INSERT_UNLESS_RECENT: Final = """
INSERT INTO alerts (alert_id, kind, subject, dedup_key, severity, title, details, since, raised_at, source)
SELECT $1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10
WHERE NOT EXISTS (
    SELECT 1 FROM alerts
    WHERE dedup_key = $4
      AND raised_at > $9::timestamptz - $11::interval AND raised_at < $9::timestamptz + $11::interval
)
ON CONFLICT (alert_id) DO NOTHING
"""

_COLUMNS: Final = (
    "sequence, kind, subject, severity, title, details::text AS details, since, raised_at, source"
)
#: The newest alerts, for the admin list and a fresh live-stream client.
SELECT_NEWEST: Final = f"SELECT {_COLUMNS} FROM alerts ORDER BY sequence DESC LIMIT $1"  # noqa: S608
#: Alerts a reconnecting live-stream client missed, oldest first.
SELECT_AFTER: Final = f"SELECT {_COLUMNS} FROM alerts WHERE sequence > $1 ORDER BY sequence LIMIT $2"  # noqa: S608


class PgAlertRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add_unless_recent(self, alert: Alert, *, cooldown: timedelta) -> bool:
        await self._connection.execute(LOCK_ALERT_KEY, alert.dedup_key)
        status = await self._connection.execute(
            INSERT_UNLESS_RECENT,
            alert.alert_id,
            alert.kind,
            alert.subject,
            alert.dedup_key,
            alert.severity.value,
            alert.title,
            to_json(alert.details),
            alert.since,
            alert.raised_at,
            alert.source,
            cooldown,
        )
        return status == "INSERT 0 1"

    async def recent(self, *, limit: int, after_sequence: int | None = None) -> Sequence[StoredAlert]:
        if after_sequence is None:
            rows = await self._connection.fetch(SELECT_NEWEST, limit)
        else:
            rows = await self._connection.fetch(SELECT_AFTER, after_sequence, limit)
        return [_stored(row) for row in rows]


def _stored(row: asyncpg.Record) -> StoredAlert:
    return StoredAlert(
        sequence=row["sequence"],
        alert=Alert(
            kind=row["kind"],
            subject=row["subject"],
            severity=Severity(row["severity"]),
            title=row["title"],
            details=from_json(row["details"]),
            since=row["since"],
            raised_at=row["raised_at"],
            source=row["source"],
        ),
    )

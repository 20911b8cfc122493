"""Webhook log rows in PostgreSQL (``WebhookLogRepository``).

A webhook's body names the customer (Cashfree's ``customer_details``), so it is stored sealed with the
personal-data cipher (``raw_body_sealed``, ``raw_body_key_id``), never in plain text; rows written
before migration 0015 may still hold ``raw_body`` until ``payments reencrypt`` seals them. The parsed
``payload`` is stored without the customer's name, email and phone (the gateway mapping drops them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import asyncpg

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import Connection
from payments.domain.errors import ConcurrentTransition, NotFound
from payments.domain.webhook.intake import ReceivedWebhook
from payments.domain.webhook.log import WebhookLog, WebhookStatus, check_transition

_COLUMNS: Final = """
    id, event_id, provider, event_type, api_version, order_id, payload::text AS payload, raw_body,
    raw_body_sealed, raw_body_key_id, headers::text AS headers, signature, hash, retry_count,
    processing_status, failure_reason, received_at, processed_at
"""

#: The first delivery of an event creates its row and returns it; later ones find it (one row per event).
INSERT_WEBHOOK: Final = f"""
INSERT INTO webhook_logs (event_id, provider, event_type, api_version, raw_body_sealed, raw_body_key_id,
                          headers, signature, hash, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10)
ON CONFLICT (event_id) DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608
#: One webhook by its dedup key.
SELECT_BY_EVENT: Final = f"SELECT {_COLUMNS} FROM webhook_logs WHERE event_id = $1"  # noqa: S608
#: One webhook by id (admin reprocess).
SELECT_BY_ID: Final = f"SELECT {_COLUMNS} FROM webhook_logs WHERE id = $1"  # noqa: S608

#: Move a row if it still has the status read; a retry (PROCESSING again, or after FAILED) counts.
UPDATE_STATUS: Final = f"""
UPDATE webhook_logs
SET processing_status = $3,
    retry_count = retry_count
        + CASE WHEN $3 = 'PROCESSING' AND processing_status <> 'RECEIVED' THEN 1 ELSE 0 END,
    failure_reason = $4,
    processed_at = CASE WHEN $3 IN ('SUCCESS', 'FAILED') THEN $5 ELSE processed_at END,
    order_id = coalesce($6, order_id),
    payload = coalesce($7::text::jsonb, payload)
WHERE id = $1 AND processing_status = $2
RETURNING {_COLUMNS}
"""  # noqa: S608


#: The associated data of a sealed body: a ciphertext copied into another column does not open.
RAW_BODY_COLUMN: Final = "webhook_logs.raw_body"


class PgWebhookLogRepository:
    def __init__(self, connection: Connection, cipher: PiiCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    async def record(self, received: ReceivedWebhook) -> WebhookLog:
        sealed = self._cipher.seal(received.body.decode("utf-8", "replace"), column=RAW_BODY_COLUMN)
        row = await self._connection.fetchrow(
            INSERT_WEBHOOK,
            received.dedup_key,
            received.provider,
            received.event_type,
            received.version,
            sealed.ciphertext,
            sealed.key_id,
            to_json(received.headers),
            received.headers.get("x-webhook-signature"),
            received.body_hash,
            received.received_at,
        )
        if row is None:
            # An earlier delivery made it. Read in a statement of its own: its snapshot sees the row
            # another transaction committed while our INSERT waited on it.
            row = await self._connection.fetchrow(SELECT_BY_EVENT, received.dedup_key)
        assert row is not None  # inserted above or by an earlier delivery, in this transaction's view
        return self._log(row)

    async def get(self, webhook_id: int) -> WebhookLog:
        row = await self._connection.fetchrow(SELECT_BY_ID, webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return self._log(row)

    async def move(
        self,
        log: WebhookLog,
        status: WebhookStatus,
        *,
        now: datetime,
        reason: str | None = None,
        order_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> WebhookLog:
        check_transition(log.status, status)
        row = await self._connection.fetchrow(
            UPDATE_STATUS,
            log.id,
            log.status.value,
            status.value,
            reason,
            now,
            order_id,
            None if payload is None else to_json(payload),
        )
        if row is None:
            raise ConcurrentTransition(f"webhook {log.id} changed concurrently")
        return self._log(row)

    def _log(self, row: asyncpg.Record) -> WebhookLog:
        return _log(row, self._raw_body(row))

    def _raw_body(self, row: asyncpg.Record) -> str:
        if row["raw_body_sealed"] is None:
            return str(row["raw_body"])  # written before bodies were sealed
        return self._cipher.open(
            row["raw_body_sealed"], key_id=row["raw_body_key_id"], column=RAW_BODY_COLUMN
        )


def _log(row: asyncpg.Record, raw_body: str) -> WebhookLog:
    return WebhookLog(
        id=row["id"],
        event_id=row["event_id"],
        provider=row["provider"],
        event_type=row["event_type"],
        api_version=row["api_version"],
        order_id=row["order_id"],
        payload=from_json(row["payload"]),
        raw_body=raw_body,
        headers=from_json(row["headers"]) or {},
        signature=row["signature"],
        hash=row["hash"],
        retry_count=row["retry_count"],
        status=WebhookStatus(row["processing_status"]),
        failure_reason=row["failure_reason"],
        received_at=row["received_at"],
        processed_at=row["processed_at"],
    )

"""An in-memory ``WebhookLogRepository`` with the PostgreSQL one's rules: one row per event id,
guarded status moves, retries counted, writes visible to others only after commit."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from payments.domain.errors import ConcurrentTransition, NotFound
from payments.domain.webhook.intake import ReceivedWebhook
from payments.domain.webhook.log import WebhookLog, WebhookStatus, check_transition


@dataclass
class WebhookTables:
    rows: dict[int, WebhookLog] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


class InMemoryWebhookLogRepository:
    def __init__(self, tables: WebhookTables) -> None:
        self._tables = tables
        self._staged: dict[int, WebhookLog] = {}

    async def record(self, received: ReceivedWebhook) -> WebhookLog:
        for row in self._visible().values():
            if row.event_id == received.dedup_key:
                return row
        row = WebhookLog(
            id=next(self._tables.ids),
            event_id=received.dedup_key,
            provider=received.provider,
            event_type=received.event_type,
            api_version=received.version,
            order_id=None,
            payload=None,
            raw_body=received.body.decode("utf-8", "replace"),
            headers=dict(received.headers),
            signature=received.headers.get("x-webhook-signature"),
            hash=received.body_hash,
            retry_count=0,
            status=WebhookStatus.RECEIVED,
            failure_reason=None,
            received_at=received.received_at,
            processed_at=None,
        )
        self._staged[row.id] = row
        return row

    async def get(self, webhook_id: int) -> WebhookLog:
        row = self._visible().get(webhook_id)
        if row is None:
            raise NotFound(f"webhook {webhook_id} not found")
        return row

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
        current = self._visible().get(log.id)
        if current is None or current.status is not log.status:
            raise ConcurrentTransition(f"webhook {log.id} changed concurrently")
        retried = status is WebhookStatus.PROCESSING and current.status is not WebhookStatus.RECEIVED
        final = status in {WebhookStatus.SUCCESS, WebhookStatus.FAILED}
        moved = replace(
            current,
            status=status,
            retry_count=current.retry_count + int(retried),
            failure_reason=reason,
            processed_at=now if final else current.processed_at,
            order_id=order_id or current.order_id,
            payload=payload if payload is not None else current.payload,
        )
        self._staged[log.id] = moved
        return moved

    def _visible(self) -> dict[int, WebhookLog]:
        return {**self._tables.rows, **self._staged}

    def commit(self) -> None:
        self._tables.rows.update(self._staged)

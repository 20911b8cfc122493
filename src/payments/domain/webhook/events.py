"""Messages about webhook processing (DESIGN §3 ``webhook.exchange`` and ``analytics.webhook.failure``)."""

from __future__ import annotations

from datetime import datetime

from payments.domain.events import OutgoingEvent
from payments.domain.webhook.log import WebhookLog

SCHEMA_VERSION = 1


def webhook_event(
    log: WebhookLog, routing_key: str, *, now: datetime, reason: str | None = None
) -> OutgoingEvent:
    """One message about ``log``. It is written only in the transaction that moves the log, so the
    moment in its id makes each one distinct (a reprocessed webhook starts again with the same retry
    count) without risking a duplicate: a rolled-back transaction wrote nothing."""
    return OutgoingEvent(
        event_id=f"webhook_{log.id}_{routing_key}_{log.retry_count}_{now.timestamp():.6f}",
        routing_key=routing_key,
        payload={
            "schemaVersion": SCHEMA_VERSION,
            "webhookId": log.id,
            "eventId": log.event_id,
            "provider": log.provider,
            "eventType": log.event_type,
            "status": log.status.value,
            "orderId": log.order_id,
            "retryCount": log.retry_count,
            "reason": reason,
            "occurredAt": now.isoformat(),
        },
        occurred_at=now,
    )

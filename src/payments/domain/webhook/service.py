"""Operator actions on stored webhooks."""

from __future__ import annotations

from datetime import datetime

from payments.domain.events import OutgoingEvent
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.domain.webhook.log import WebhookStatus

#: Where a re-queued webhook goes: the same routing key ingest uses.
RECEIVED_ROUTING_KEY = "webhook.cashfree.received"


async def reprocess(unit_of_work: UnitOfWorkFactory, webhook_id: int, *, now: datetime) -> str:
    """Queue a stored webhook again (through the outbox) and mark it RECEIVED; its dedup key.

    The agent then handles it as a new delivery: a webhook that already succeeded is applied again,
    which changes nothing (every effect is idempotent), and one that failed gets a fresh set of retries.
    """
    async with unit_of_work() as uow:
        log = await uow.webhooks.get(webhook_id)
        requeued = await uow.webhooks.move(log, WebhookStatus.RECEIVED, now=now, reason="reprocess requested")
        await uow.outbox.add(
            OutgoingEvent(
                event_id=f"webhook_{log.id}_reprocess_{now.timestamp():.6f}",
                routing_key=RECEIVED_ROUTING_KEY,
                payload=requeued.as_received().model_dump(mode="json"),
                occurred_at=now,
            )
        )
    return log.event_id

"""Raising an alert: stored once per cooldown, and announced with the same transaction's outbox."""

from __future__ import annotations

from datetime import timedelta

from payments.domain.alerts.model import ADMIN_ALERT_ROUTING_KEY, Alert
from payments.domain.events import OutgoingEvent
from payments.domain.unit_of_work import UnitOfWork


async def raise_alert(uow: UnitOfWork, alert: Alert, *, cooldown: timedelta) -> bool:
    """Store ``alert`` and publish it as ``email.admin.alert``, unless its cooldown is still running.

    True if raised. Both writes happen in ``uow``'s transaction, so an alert is mailed and streamed
    exactly when it is stored.
    """
    if not await uow.alerts.add_unless_recent(alert, cooldown=cooldown):
        return False
    await uow.outbox.add(
        OutgoingEvent(
            event_id=f"evt_{alert.alert_id}",
            routing_key=ADMIN_ALERT_ROUTING_KEY,
            payload=alert.message(),
            occurred_at=alert.raised_at,
        )
    )
    return True

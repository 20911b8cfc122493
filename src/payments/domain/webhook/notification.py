"""A gateway notification: one inbound webhook, mapped by its bridge onto domain terms.

The bridge verifies the signature, parses the gateway's payload and fills this record; agents decide
from it. A notification is a hint, never proof: before a payment becomes SUCCESS its amount, currency
and status are confirmed with the gateway (DESIGN §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from payments.domain.gateway import AttemptStatus, GatewayRefundStatus
from payments.domain.money import Money


class NotificationKind(StrEnum):
    PAYMENT = "PAYMENT"  #: a payment attempt reached a status (success, failure, customer dropped out)
    REFUND = "REFUND"  #: a refund reached a status
    SETTLEMENT = "SETTLEMENT"  #: a payout to our bank account was initiated, paid, failed or reversed
    DISPUTE = "DISPUTE"  #: a chargeback or dispute was opened, updated or closed
    UNKNOWN = "UNKNOWN"  #: an event type this code does not know; kept (raw) and acknowledged


@dataclass(frozen=True, kw_only=True)
class GatewayNotification:
    """What one webhook tells us; fields that do not apply to its kind are None."""

    kind: NotificationKind
    #: The gateway's own event type string, kept for logs and investigations only; decide on ``kind``.
    event_type: str
    #: Identifies the event across redeliveries: the same event always yields the same key.
    dedup_key: str
    #: When the gateway says the event happened (timezone-aware), if it said so readably.
    occurred_at: datetime | None = None
    order_id: str | None = None
    #: The gateway's id of the payment attempt (an order may have several).
    attempt_id: str | None = None
    attempt_status: AttemptStatus | None = None
    #: The amount the event is about: the attempt's, the refund's, the settlement's or the dispute's.
    amount: Money | None = None
    payment_method: str | None = None
    error_code: str | None = None
    error_reason: str | None = None
    #: Our refund id (sent when we asked for the refund).
    refund_id: str | None = None
    #: The gateway's id of the refund.
    gateway_refund_id: str | None = None
    refund_status: GatewayRefundStatus | None = None
    settlement_id: str | None = None
    #: The bank's reference (UTR) for a settlement payout.
    utr: str | None = None
    dispute_id: str | None = None
    #: The whole payload as received (amounts as Decimal), for the webhook log and investigations.
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

"""What happened in the sandbox that Cashfree would announce by webhook.

Services return these; the app hands them to the webhook outbox, which renders the payload for the
configured webhook version and queues the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payments.bridges.cashfree.sandbox.model import (
    Attempt,
    Order,
    OrderSettlement,
    Refund,
    SettlementBatch,
)


@dataclass(frozen=True)
class PaymentFinished:
    """An attempt reached SUCCESS, FAILED or USER_DROPPED."""

    order: Order
    attempt: Attempt
    at: datetime


@dataclass(frozen=True)
class RefundFinished:
    """A refund reached SUCCESS or CANCELLED."""

    order: Order
    refund: Refund
    at: datetime


@dataclass(frozen=True)
class Settled:
    """A settlement batch was paid out to the merchant."""

    batch: SettlementBatch
    settlements: tuple[OrderSettlement, ...]
    at: datetime


SandboxEvent = PaymentFinished | RefundFinished | Settled

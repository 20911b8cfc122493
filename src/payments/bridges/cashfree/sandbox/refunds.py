"""Refunds on PAID orders: the amount rule, duplicate ids, and the outcome by ``refund_note``.

Sandbox outcome by the exact, case-sensitive ``refund_note`` (FACTS §5; the status mapping is ours,
since Cashfree's enum has neither FAILED nor ACTIVE):

| refund_note | refund_status | when |
|---|---|---|
| ``SUCCESS`` | SUCCESS | at once (the create answer already shows it) |
| ``FAILED`` | CANCELLED | at once; its amount no longer counts against the paid amount |
| ``PENDING``, ``ACTIVE`` | PENDING | stays pending |
| anything else, or none | PENDING, then SUCCESS | after ``REFUND_DELAY`` of sandbox time |

Every change to SUCCESS or CANCELLED sends REFUND_STATUS_WEBHOOK. A second refund with the same
``refund_id`` on the order answers 409 ``refund_already_exists``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from payments.bridges.cashfree.sandbox import validation as check
from payments.bridges.cashfree.sandbox.errors import already_exists, invalid
from payments.bridges.cashfree.sandbox.events import RefundFinished, SandboxEvent
from payments.bridges.cashfree.sandbox.model import Attempt, Ledger, Order, Refund, TimerKind, new_reference
from payments.bridges.cashfree.sandbox.states import (
    REFUND_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    RefundTrigger,
    transition,
)

#: Sandbox time from an ordinary refund to its success (real refunds take days; tests advance the clock).
REFUND_DELAY: Final = timedelta(seconds=60)
#: A refund must start within six months of the payment (FACTS §5).
REFUND_WINDOW: Final = timedelta(days=183)
#: Notes that settle a refund's outcome at once (None: it stays PENDING).
NOTE_OUTCOMES: Final[dict[str, RefundTrigger | None]] = {
    "SUCCESS": RefundTrigger.SUCCEED,
    "FAILED": RefundTrigger.CANCEL,
    "PENDING": None,
    "ACTIVE": None,
}
DESCRIPTIONS: Final = {
    RefundStatus.SUCCESS: "Refund processed successfully",
    RefundStatus.CANCELLED: "Refund failed and was cancelled",
}


@dataclass(frozen=True)
class RefundRequest:
    """A validated Create Refund body."""

    refund_id: str
    amount: Decimal
    note: str | None
    speed: str


def parse_refund(body: dict[str, Any]) -> RefundRequest:
    refund_id = check.text(body, "refund_id", lengths=(3, 40), required=True, pattern=check.ID_CHARACTERS)
    amount = check.amount(body, "refund_amount", minimum=Decimal("0.01"))
    note = check.text(body, "refund_note", lengths=(3, 100))
    speed = check.choice(body, "refund_speed", frozenset({"STANDARD", "INSTANT"}), default="STANDARD")
    return RefundRequest(str(refund_id), amount, note, speed)


def create_refund(
    ledger: Ledger, order: Order, body: dict[str, Any], now: datetime
) -> tuple[Refund, list[SandboxEvent]]:
    """Accept a refund on a PAID order; the refunds that are not CANCELLED never exceed the payment."""
    wanted = parse_refund(body)
    payment = _paid_attempt(ledger, order, now)
    if (order.order_id, wanted.refund_id) in ledger.refunds:
        raise already_exists("refund_already_exists", "refund with same id is already present")
    _ensure_refundable(ledger, order, payment, wanted.amount)
    refund = Refund(
        refund_id=wanted.refund_id,
        cf_refund_id=ledger.next_cf_id(),
        order_id=order.order_id,
        cf_payment_id=payment.cf_payment_id,
        amount=wanted.amount,
        currency=order.currency,
        note=wanted.note,
        speed=wanted.speed,
        created_at=now,
    )
    ledger.refunds[(order.order_id, refund.refund_id)] = refund
    order.refund_ids.append(refund.refund_id)
    return refund, _decide(ledger, order, refund, now)


def _decide(ledger: Ledger, order: Order, refund: Refund, now: datetime) -> list[SandboxEvent]:
    """Settle the outcome a sandbox note asks for, or schedule the ordinary success."""
    if refund.note in NOTE_OUTCOMES:
        trigger = NOTE_OUTCOMES[refund.note]
        return [] if trigger is None else _finish(order, refund, trigger, now)
    refund.due_at = now + REFUND_DELAY
    ledger.schedule(refund.due_at, TimerKind.FINISH_REFUND, order.order_id, refund.refund_id)
    return []


def _paid_attempt(ledger: Ledger, order: Order, now: datetime) -> Attempt:
    if order.status is not OrderStatus.PAID:
        raise invalid("order_not_paid", f"refunds need a PAID order; this one is {order.status.value}")
    attempts = (ledger.attempts[cf_id] for cf_id in order.attempt_ids)
    payment = next(attempt for attempt in attempts if attempt.status is PaymentStatus.SUCCESS)
    if payment.completed_at is not None and now - payment.completed_at > REFUND_WINDOW:
        raise invalid("refund_window_expired", "refunds must start within 6 months of the payment")
    return payment


def _ensure_refundable(ledger: Ledger, order: Order, payment: Attempt, amount: Decimal) -> None:
    committed = sum(
        (refund.amount for refund in ledger.refunds_of(order) if refund.status is not RefundStatus.CANCELLED),
        Decimal(0),
    )
    if committed + amount > payment.amount:
        left = payment.amount - committed
        raise invalid("refund_amount_invalid", f"refund_amount exceeds the refundable amount {left}")


def _finish(order: Order, refund: Refund, trigger: RefundTrigger, now: datetime) -> list[SandboxEvent]:
    refund.status = transition(REFUND_TRANSITIONS, refund.status, trigger)
    refund.processed_at, refund.due_at = now, None
    refund.status_description = DESCRIPTIONS[refund.status]
    if refund.status is RefundStatus.SUCCESS:
        refund.arn = new_reference()
    return [RefundFinished(order, refund, now)]


def finish_planned(ledger: Ledger, order_id: str, refund_id: str, now: datetime) -> list[SandboxEvent]:
    """Succeed an ordinary refund once its delay has passed."""
    refund = ledger.refunds[(order_id, refund_id)]
    if refund.due_at is None or refund.due_at > now:
        return []
    return _finish(ledger.orders[order_id], refund, RefundTrigger.SUCCEED, now)

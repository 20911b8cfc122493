"""What the gateway's view of an order means for our payment: a pure decision, used by verify,
webhooks and the expiry job alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from payments.domain.errors import ValidationFailed
from payments.domain.gateway import AttemptStatus, GatewayAttempt, GatewayOrder, GatewayOrderStatus
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PAYMENT_TRANSITIONS, PaymentTrigger

#: An order the gateway closed without payment ends ours the same way.
_CLOSED_ORDER = {
    GatewayOrderStatus.EXPIRED: PaymentTrigger.EXPIRE,
    GatewayOrderStatus.TERMINATED: PaymentTrigger.CANCEL,
}
_ATTEMPT_FAILED = {
    AttemptStatus.FAILED,
    AttemptStatus.USER_DROPPED,
    AttemptStatus.CANCELLED,
    AttemptStatus.VOID,
}


class AmountMismatch(ValidationFailed):
    """The gateway's amount or currency does not match the payment."""

    code = "amount_mismatch"


@dataclass(frozen=True)
class Decision:
    """A transition to apply (or None: nothing to change), with the fields it sets."""

    trigger: PaymentTrigger | None
    changes: dict[str, Any]


NOTHING = Decision(None, {})


def check_integrity(payment: Payment, order: GatewayOrder, attempts: Sequence[GatewayAttempt]) -> None:
    """Refuse a gateway answer whose order or successful attempt disagrees with our amount."""
    if order.order_id != payment.order_id or order.amount != payment.amount:
        raise AmountMismatch(
            f"gateway order {order.order_id} is {order.amount}; "
            f"payment {payment.payment_id} is {payment.amount}"
        )
    for attempt in attempts:
        if attempt.status is AttemptStatus.SUCCESS and attempt.amount.currency != payment.amount.currency:
            raise AmountMismatch(f"attempt {attempt.attempt_id} was paid in {attempt.amount.currency}")


def decide(payment: Payment, order: GatewayOrder, attempts: Sequence[GatewayAttempt]) -> Decision:
    """The transition the gateway's answer calls for, if any.

    Success needs both a successful attempt and the order marked paid (DESIGN §6: never credit on a
    single signal). Otherwise an order the gateway closed decides expiry or cancellation, and failing
    that the latest attempt decides between processing and failed.
    """
    success = next((a for a in attempts if a.status is AttemptStatus.SUCCESS), None)
    if success is not None and order.status is GatewayOrderStatus.PAID:
        return _transition(payment, PaymentTrigger.SUCCEED, _success_fields(success))
    closed = _CLOSED_ORDER.get(order.status)
    if closed is not None:
        return _transition(payment, closed, {})
    latest = _latest(attempts)
    return NOTHING if latest is None else _from_attempt(payment, latest)


def _from_attempt(payment: Payment, attempt: GatewayAttempt) -> Decision:
    if attempt.status is AttemptStatus.PENDING:
        return _transition(payment, PaymentTrigger.PROCESS, {"payment_method": attempt.method})
    if attempt.status in _ATTEMPT_FAILED:
        reason = attempt.error_reason or attempt.message or attempt.status.value.lower()
        return _transition(
            payment, PaymentTrigger.FAIL, {"failure_reason": reason, "payment_method": attempt.method}
        )
    return NOTHING


def _success_fields(attempt: GatewayAttempt) -> dict[str, Any]:
    return {
        "gateway_payment_id": attempt.attempt_id,
        "payment_method": attempt.method,
        "failure_reason": None,
    }


def _latest(attempts: Sequence[GatewayAttempt]) -> GatewayAttempt | None:
    dated = [a for a in attempts if a.started_at is not None]
    if dated:
        return max(dated, key=lambda a: a.started_at)  # type: ignore[arg-type, return-value]
    return attempts[-1] if attempts else None


def _transition(payment: Payment, trigger: PaymentTrigger, changes: dict[str, Any]) -> Decision:
    """The decision if the payment's state allows it; otherwise nothing to do.

    "Not allowed" here means the payment is already there (a repeated webhook or verify) or past it
    (a late failed attempt after a success); neither changes anything. A success is never lost this
    way: ``succeed`` is allowed from every state that has not captured money.
    """
    if (payment.status, trigger) in PAYMENT_TRANSITIONS:
        return Decision(trigger, changes)
    return NOTHING

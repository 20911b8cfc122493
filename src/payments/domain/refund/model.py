"""The refund aggregate, and a payment's refundable balance."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from payments.domain.gateway import RefundSpeed
from payments.domain.money import Money
from payments.domain.refund.states import HOLDS_BALANCE, RefundState, RefundTrigger, transition

#: Cashfree refunds only within six months of the payment (FACTS §5); counted from the payment's
#: creation, which is never later than its capture, so we refuse on the safe side.
REFUND_WINDOW: Final = timedelta(days=182)


@dataclass(frozen=True, kw_only=True)
class Refund:
    refund_id: str
    payment_id: str
    order_id: str
    amount: Money
    reason: str
    status: RefundState
    speed: RefundSpeed = RefundSpeed.STANDARD
    #: The gateway's id of the refund, once it has one.
    gateway_refund_id: str | None = None
    #: The gateway's words about the status (why it is on hold, why it failed).
    status_description: str | None = None
    idempotency_key: str | None = None
    retry_count: int = 0
    version: int = 1
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None = None

    def moved(self, trigger: RefundTrigger, *, now: datetime, **changes: Any) -> Refund:
        """This refund after ``trigger`` (raises ``IllegalTransition``), with ``changes`` applied."""
        final = transition(self.status, trigger)
        done = final in {RefundState.SUCCESS, RefundState.FAILED, RefundState.REVERSED}
        return replace(
            self,
            status=final,
            version=self.version + 1,
            updated_at=now,
            processed_at=now if done else self.processed_at,
            **changes,
        )

    def snapshot(self) -> dict[str, Any]:
        """The audit log's before/after view."""
        return {
            "status": self.status.value,
            "amount": str(self.amount.amount),
            "currency": self.amount.currency,
            "paymentId": self.payment_id,
            "gatewayRefundId": self.gateway_refund_id,
            "statusDescription": self.status_description,
            "version": self.version,
        }


def committed(refunds: Iterable[Refund], currency: str) -> Money:
    """What the payment's refunds take out of it: every refund not failed and not reversed."""
    total = Money.zero(currency)
    for refund in refunds:
        if refund.status in HOLDS_BALANCE:
            total = total + refund.amount
    return total


def refunded(refunds: Iterable[Refund], currency: str) -> Money:
    """What actually went back to the customer (successful refunds only)."""
    total = Money.zero(currency)
    for refund in refunds:
        if refund.status is RefundState.SUCCESS:
            total = total + refund.amount
    return total

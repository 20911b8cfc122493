"""How a refund looks on the wire: camelCase, money as a string, times in UTC with a ``Z``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payments.domain.money import Money
from payments.domain.payment.model import Payment
from payments.domain.refund.model import Refund, committed, refunded
from payments.domain.refund.service import REFUNDABLE
from payments.web.payment_views import timestamp


def refund_json(refund: Refund) -> dict[str, Any]:
    """The full view of a refund."""
    return {
        "refundId": refund.refund_id,
        "paymentId": refund.payment_id,
        "orderId": refund.order_id,
        "amount": str(refund.amount.amount),
        "currency": refund.amount.currency,
        "reason": refund.reason,
        "status": refund.status.value,
        "speed": refund.speed.value,
        "gatewayRefundId": refund.gateway_refund_id,
        "statusDescription": refund.status_description,
        "createdAt": timestamp(refund.created_at),
        "updatedAt": timestamp(refund.updated_at),
        "processedAt": timestamp(refund.processed_at) if refund.processed_at else None,
    }


def payment_refunds_json(payment: Payment, refunds: Sequence[Refund]) -> dict[str, Any]:
    """A payment's refunds, oldest first, with what went back and what may still be refunded."""
    currency = payment.amount.currency
    # Nothing is refundable from a payment that was never captured (or is already fully refunded),
    # whatever its amount says: the same states the refund service accepts.
    captured = payment.amount if payment.status in REFUNDABLE else Money.zero(currency)
    left = max(captured - committed(refunds, currency), Money.zero(currency))
    return {
        "paymentId": payment.payment_id,
        "refunds": [refund_json(refund) for refund in refunds],
        "refundedAmount": str(refunded(refunds, currency).amount),
        "refundableAmount": str(left.amount),
    }


def accepted_refund_json(refund_id: str, payment_id: str) -> dict[str, Any]:
    """The 202 body of an initiate whose reply did not come in time: where to look for the outcome."""
    return {
        "refundId": refund_id,
        "paymentId": payment_id,
        "status": "INITIATED",
        "statusUrl": refund_url(refund_id),
    }


def refund_url(refund_id: str) -> str:
    return f"/api/v1/refunds/{refund_id}"

"""How a payment looks on the wire (issue 4 §7): camelCase, money as a string, no personal data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from payments.domain.payment.model import Payment


def payment_json(payment: Payment) -> dict[str, Any]:
    """The full view of a payment; the customer's name, email and phone are never returned."""
    return {
        "paymentId": payment.payment_id,
        "orderId": payment.order_id,
        "userId": payment.user_id,
        "status": payment.status.value,
        # Money is quantized to its currency's minor unit, so INR always has 2 decimals.
        "amount": str(payment.amount.amount),
        "currency": payment.amount.currency,
        "gateway": payment.gateway,
        "gatewayOrderId": payment.gateway_order_id,
        "gatewayPaymentId": payment.gateway_payment_id,
        "paymentSessionId": payment.session_id,
        "paymentMethod": payment.payment_method,
        "failureReason": payment.failure_reason,
        "settlementStatus": payment.settlement_status,
        "isReconciled": payment.is_reconciled,
        "retryCount": payment.retry_count,
        "createdAt": timestamp(payment.created_at),
        "updatedAt": timestamp(payment.updated_at),
    }


def status_json(payment: Payment) -> dict[str, Any]:
    """The short view ``GET /api/v1/payments/status/{orderId}`` answers."""
    return {
        "paymentId": payment.payment_id,
        "orderId": payment.order_id,
        "status": payment.status.value,
        "amount": str(payment.amount.amount),
        "currency": payment.amount.currency,
        "updatedAt": timestamp(payment.updated_at),
    }


def accepted_json(payment_id: str, order_id: str) -> dict[str, Any]:
    """The 202 body of a write whose reply did not come in time: where to look for the outcome."""
    return {
        "paymentId": payment_id,
        "orderId": order_id,
        "status": "PROCESSING",
        "statusUrl": payment_url(payment_id),
    }


def payment_url(payment_id: str) -> str:
    return f"/api/v1/payments/{payment_id}"


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as most JSON clients expect."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

"""Cashfree webhook payloads mapped onto the domain's ``GatewayNotification``.

No Cashfree name leaves this package: statuses become ``AttemptStatus`` / ``GatewayRefundStatus``
(``UNKNOWN`` for a value we do not know, never a guess), ``cf_*`` ids become our ``attempt_id`` and
``gateway_refund_id``, amounts become ``Money``. Only ``event_type`` keeps Cashfree's string, for logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, Final, TypeVar

from payments.bridges.cashfree.webhook_payloads import (
    DisputeWebhook,
    PaymentWebhook,
    RefundWebhook,
    SettlementWebhook,
    WebhookDispute,
    WebhookDisputeOrder,
    WebhookEvent,
    WebhookOrder,
    WebhookPayment,
    WebhookPaymentError,
    WebhookRefund,
    WebhookSettlement,
)
from payments.domain.errors import ValidationFailed
from payments.domain.gateway import AttemptStatus, GatewayRefundStatus
from payments.domain.money import Money
from payments.domain.webhook.notification import GatewayNotification, NotificationKind

#: Cashfree pays settlements out to the merchant's Indian bank account, in rupees; its settlement
#: webhooks carry no currency field, so INR is used unless a ``settlement_currency`` says otherwise.
SETTLEMENT_CURRENCY: Final = "INR"

_Status = TypeVar("_Status", AttemptStatus, GatewayRefundStatus)


def to_notification(event: WebhookEvent, *, dedup_key: str, raw: Mapping[str, Any]) -> GatewayNotification:
    """The domain's view of one parsed webhook."""
    base = GatewayNotification(
        kind=NotificationKind.UNKNOWN,
        event_type=event.type,
        dedup_key=dedup_key,
        occurred_at=event.event_time,
        raw=raw,
    )
    if isinstance(event, PaymentWebhook):
        return _payment(base, event)
    if isinstance(event, RefundWebhook):
        return _refund(base, event)
    if isinstance(event, SettlementWebhook):
        return _settlement(base, event)
    if isinstance(event, DisputeWebhook):
        return _dispute(base, event)
    return base


def _payment(base: GatewayNotification, event: PaymentWebhook) -> GatewayNotification:
    order = event.data.order or WebhookOrder()
    payment = event.data.payment or WebhookPayment()
    error = event.data.error_details or WebhookPaymentError()
    return replace(
        base,
        kind=NotificationKind.PAYMENT,
        order_id=order.order_id,
        attempt_id=payment.cf_payment_id,
        attempt_status=_status(AttemptStatus, payment.payment_status),
        amount=_money(payment.payment_amount, payment.payment_currency),
        payment_method=_method(payment),
        error_code=error.error_code,
        error_reason=error.error_reason,
    )


def _refund(base: GatewayNotification, event: RefundWebhook) -> GatewayNotification:
    refund = event.data.refund or WebhookRefund()
    return replace(
        base,
        kind=NotificationKind.REFUND,
        order_id=refund.order_id,
        attempt_id=refund.cf_payment_id,
        amount=_money(refund.refund_amount, refund.refund_currency),
        refund_id=refund.refund_id,
        gateway_refund_id=refund.cf_refund_id,
        refund_status=_status(GatewayRefundStatus, refund.refund_status),
    )


def _settlement(base: GatewayNotification, event: SettlementWebhook) -> GatewayNotification:
    settlement = event.data.settlement or WebhookSettlement()
    # amount_settled is what reached the bank after adjustments; settlement_amount is the fallback.
    amount = settlement.amount_settled
    if amount is None:
        amount = settlement.settlement_amount
    return replace(
        base,
        kind=NotificationKind.SETTLEMENT,
        amount=_money(amount, settlement.settlement_currency or SETTLEMENT_CURRENCY),
        settlement_id=settlement.settlement_id,
        utr=settlement.utr,
    )


def _dispute(base: GatewayNotification, event: DisputeWebhook) -> GatewayNotification:
    dispute = event.data.dispute or WebhookDispute()
    order = event.data.order_details or WebhookDisputeOrder()
    currency = dispute.dispute_amount_currency or order.payment_currency or order.order_currency
    return replace(
        base,
        kind=NotificationKind.DISPUTE,
        order_id=order.order_id,
        attempt_id=order.cf_payment_id,
        amount=_money(dispute.dispute_amount, currency),
        dispute_id=dispute.dispute_id,
    )


def _status(enum: type[_Status], value: str | None) -> _Status | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return enum("UNKNOWN")


def _money(amount: Decimal | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    try:
        return Money(amount, currency)
    except ValidationFailed:
        # A currency we do not support stays in the raw payload; amounts are confirmed with the
        # gateway's API before any money moves, so the notification only loses a hint here.
        return None


def _method(payment: WebhookPayment) -> str | None:
    # payment_method holds exactly one key naming the method (upi, card, netbanking…).
    if payment.payment_method:
        return next(iter(payment.payment_method))
    return payment.payment_group

"""Lenient models of Cashfree's webhook payloads (FACTS §7), payload versions 2023-08-01 and 2025-01-01.

Cashfree's own samples break its spec, so these models accept what it really sends: ids as JSON
numbers (kept as strings), ``null`` in any field, ``entity: "Refund"``, statuses outside the enums,
and fields we have never seen (kept in ``model_extra``). They are fed the output of
``json.loads(..., parse_float=Decimal)``, so amounts arrive and stay exact (``2.00`` stays ``2.00``).
Every field has a default: a payload that omits one is still read, and the mapping decides what
a missing value means.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

#: Cashfree writes its times in IST; a time sent without an offset is read in IST too.
IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")


def _lenient_time(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed: datetime | None = handler(value)
    except ValidationError:
        # A time we cannot read must not cost us the event: it is left None and the raw payload keeps it.
        return None
    if parsed is not None and parsed.tzinfo is None:
        return parsed.replace(tzinfo=IST)
    return parsed


#: A timestamp from the wire: timezone-aware when readable, None when absent or unreadable.
WireTime = Annotated[datetime | None, WrapValidator(_lenient_time)]


class _Lenient(BaseModel):
    # Numbers are accepted wherever text is expected: Cashfree sends ids such as cf_refund_id,
    # settlement_id and utr as JSON numbers in its own samples; they are kept as their digits.
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class WebhookOrder(_Lenient):
    order_id: str | None = None
    order_amount: Decimal | None = None
    order_currency: str | None = None
    order_tags: dict[str, Any] | None = None


class WebhookPayment(_Lenient):
    cf_payment_id: str | None = None
    payment_status: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    payment_message: str | None = None
    payment_time: WireTime = None
    bank_reference: str | None = None
    auth_id: str | None = None
    #: One key naming the method (``upi``, ``card``, ``netbanking``…) holding its details.
    payment_method: dict[str, Any] | None = None
    payment_group: str | None = None
    #: 2025-01-01 and later.
    international_payment: dict[str, Any] | None = None
    #: 2025-01-01 and later.
    payment_surcharge: dict[str, Any] | None = None


class WebhookCustomer(_Lenient):
    customer_name: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None


class WebhookPaymentError(_Lenient):
    error_code: str | None = None
    error_description: str | None = None
    error_reason: str | None = None
    error_source: str | None = None
    error_code_raw: str | None = None
    error_description_raw: str | None = None
    error_subcode_raw: str | None = None


class PaymentWebhookData(_Lenient):
    order: WebhookOrder | None = None
    payment: WebhookPayment | None = None
    customer_details: WebhookCustomer | None = None
    #: Filled when the attempt failed.
    error_details: WebhookPaymentError | None = None
    payment_gateway_details: dict[str, Any] | None = None
    payment_offers: list[Any] | None = None


class WebhookRefund(_Lenient):
    cf_refund_id: str | None = None
    cf_payment_id: str | None = None
    #: Ours: the id we gave when asking for the refund.
    refund_id: str | None = None
    order_id: str | None = None
    refund_amount: Decimal | None = None
    refund_currency: str | None = None
    #: ``"Refund"`` in webhooks, ``"refund"`` in API responses.
    entity: str | None = None
    refund_type: str | None = None
    refund_arn: str | None = None
    #: SUCCESS, PENDING, CANCELLED, ONHOLD, and FAILED (listed by the docs, not by the enum).
    refund_status: str | None = None
    status_description: str | None = None
    created_at: WireTime = None
    processed_at: WireTime = None
    refund_charge: Decimal | None = None
    refund_note: str | None = None
    refund_splits: list[Any] | None = None
    metadata: dict[str, Any] | None = None
    refund_mode: str | None = None


class RefundWebhookData(_Lenient):
    refund: WebhookRefund | None = None


class WebhookSettlement(_Lenient):
    settlement_id: str | None = None
    status: str | None = None
    utr: str | None = None
    settlement_type: str | None = None
    reason: str | None = None
    remarks: str | None = None
    #: Not in the documented samples (which carry no currency); read when present.
    settlement_currency: str | None = None
    adjustment: Decimal | None = None
    amount_settled: Decimal | None = None
    payment_amount: Decimal | None = None
    service_charge: Decimal | None = None
    service_tax: Decimal | None = None
    settlement_amount: Decimal | None = None
    settlement_charge: Decimal | None = None
    settlement_tax: Decimal | None = None
    payment_from: WireTime = None
    payment_till: WireTime = None
    settled_on: WireTime = None
    settlement_initiated_on: WireTime = None


class SettlementWebhookData(_Lenient):
    settlement: WebhookSettlement | None = None


class WebhookDispute(_Lenient):
    dispute_id: str | None = None
    dispute_type: str | None = None
    reason_code: str | None = None
    reason_description: str | None = None
    dispute_amount: Decimal | None = None
    #: Not in every sample; the order's currencies stand in when it is missing.
    dispute_amount_currency: str | None = None
    dispute_status: str | None = None
    cf_dispute_remarks: str | None = None
    dispute_action_on: str | None = None
    created_at: WireTime = None
    updated_at: WireTime = None
    respond_by: WireTime = None


class WebhookDisputeOrder(_Lenient):
    order_id: str | None = None
    order_amount: Decimal | None = None
    order_currency: str | None = None
    cf_payment_id: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None


class DisputeWebhookData(_Lenient):
    dispute: WebhookDispute | None = None
    order_details: WebhookDisputeOrder | None = None
    customer_details: WebhookCustomer | None = None


class _Envelope(_Lenient):
    #: The event type string, e.g. ``PAYMENT_SUCCESS_WEBHOOK``.
    type: str
    event_time: WireTime = None


class PaymentWebhook(_Envelope):
    """PAYMENT_SUCCESS_WEBHOOK, PAYMENT_FAILED_WEBHOOK or PAYMENT_USER_DROPPED_WEBHOOK."""

    data: PaymentWebhookData


class RefundWebhook(_Envelope):
    """REFUND_STATUS_WEBHOOK."""

    data: RefundWebhookData


class SettlementWebhook(_Envelope):
    """SETTLEMENT_INITIATED, SETTLEMENT_SUCCESS, SETTLEMENT_FAILED or SETTLEMENT_REVERSED."""

    data: SettlementWebhookData


class DisputeWebhook(_Envelope):
    """DISPUTE_CREATED, DISPUTE_UPDATED or DISPUTE_CLOSED."""

    data: DisputeWebhookData


class UnknownWebhook(_Envelope):
    """An event type this code does not model; its data is kept exactly as parsed."""

    data: dict[str, Any]


#: Every event model ``parse_webhook`` may return.
WebhookEvent = PaymentWebhook | RefundWebhook | SettlementWebhook | DisputeWebhook | UnknownWebhook

PAYMENT_EVENT_TYPES: Final = frozenset(
    {"PAYMENT_SUCCESS_WEBHOOK", "PAYMENT_FAILED_WEBHOOK", "PAYMENT_USER_DROPPED_WEBHOOK"}
)
REFUND_EVENT_TYPES: Final = frozenset({"REFUND_STATUS_WEBHOOK"})
SETTLEMENT_EVENT_TYPES: Final = frozenset(
    {"SETTLEMENT_INITIATED", "SETTLEMENT_SUCCESS", "SETTLEMENT_FAILED", "SETTLEMENT_REVERSED"}
)
DISPUTE_EVENT_TYPES: Final = frozenset({"DISPUTE_CREATED", "DISPUTE_UPDATED", "DISPUTE_CLOSED"})

#: Event type -> model; a type not listed is read as ``UnknownWebhook``.
EVENT_MODELS: Final[dict[str, type[WebhookEvent]]] = {
    **dict.fromkeys(PAYMENT_EVENT_TYPES, PaymentWebhook),
    **dict.fromkeys(REFUND_EVENT_TYPES, RefundWebhook),
    **dict.fromkeys(SETTLEMENT_EVENT_TYPES, SettlementWebhook),
    **dict.fromkeys(DISPUTE_EVENT_TYPES, DisputeWebhook),
}

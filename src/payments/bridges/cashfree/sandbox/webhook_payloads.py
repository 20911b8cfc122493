"""Webhook bodies, shaped like Cashfree's published samples (FACTS §7), quirks included.

Envelope ``{"data", "event_time", "type"}``. Payment webhooks carry ``order``, ``payment``,
``customer_details``, ``error_details`` (null on success), ``payment_gateway_details`` and
``payment_offers``; version 2025-01-01 and later add ``international_payment`` and
``payment_surcharge``. REFUND_STATUS_WEBHOOK sends ``cf_refund_id``/``cf_payment_id`` as JSON numbers
and ``entity: "Refund"``, as Cashfree's samples do, so consumers meet the lenient parsing they need.
SETTLEMENT_SUCCESS follows the 2025-01-01 settlement sample.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from payments.bridges.cashfree.sandbox.clock import cashfree_time
from payments.bridges.cashfree.sandbox.entities import JsonObject
from payments.bridges.cashfree.sandbox.events import PaymentFinished, RefundFinished, SandboxEvent, Settled
from payments.bridges.cashfree.sandbox.states import PaymentStatus

PAYMENT_TYPES: Final = {
    PaymentStatus.SUCCESS: "PAYMENT_SUCCESS_WEBHOOK",
    PaymentStatus.FAILED: "PAYMENT_FAILED_WEBHOOK",
    PaymentStatus.USER_DROPPED: "PAYMENT_USER_DROPPED_WEBHOOK",
}
REFUND_TYPE: Final = "REFUND_STATUS_WEBHOOK"
SETTLEMENT_TYPE: Final = "SETTLEMENT_SUCCESS"
#: The first payload version with the 2025 fields (and the ``x-idempotency-key`` header).
VERSION_2025: Final = "2025-01-01"


def render(event: SandboxEvent, version: str) -> JsonObject:
    """The webhook body for ``event`` in payload ``version``."""
    if isinstance(event, PaymentFinished):
        kind, data = PAYMENT_TYPES[event.attempt.status], _payment_data(event, version)
    elif isinstance(event, RefundFinished):
        kind, data = REFUND_TYPE, _refund_data(event)
    else:
        kind, data = SETTLEMENT_TYPE, _settlement_data(event)
    return {"data": data, "event_time": cashfree_time(event.at), "type": kind}


def _payment_data(event: PaymentFinished, version: str) -> JsonObject:
    order, attempt = event.order, event.attempt
    gateway = {
        "gateway_name": "CASHFREE",
        "gateway_order_id": order.cf_order_id,
        "gateway_payment_id": attempt.cf_payment_id,
        "gateway_status_code": None,
    }
    return {
        "order": {
            "order_id": order.order_id,
            "order_amount": order.amount,
            "order_currency": order.currency,
            "order_tags": order.tags,
        },
        "payment": _payment(event, version),
        "customer_details": {name: order.customer.get(name) for name in _CUSTOMER_FIELDS},
        "error_details": attempt.error,
        "payment_gateway_details": gateway,
        "payment_offers": None,
    }


def _payment(event: PaymentFinished, version: str) -> JsonObject:
    attempt = event.attempt
    payment: JsonObject = {
        "cf_payment_id": attempt.cf_payment_id,
        "payment_status": attempt.status.value,
        "payment_amount": attempt.amount,
        "payment_currency": attempt.currency,
        "payment_message": attempt.message,
        "payment_time": cashfree_time(attempt.started_at),
        "bank_reference": attempt.bank_reference,
        "auth_id": None,
        "payment_method": {attempt.method: attempt.method_details},
        "payment_group": attempt.group,
    }
    if version >= VERSION_2025:
        payment |= {"international_payment": {"international": False}, "payment_surcharge": None}
    return payment


_CUSTOMER_FIELDS: Final = ("customer_name", "customer_id", "customer_email", "customer_phone")


def _refund_data(event: RefundFinished) -> JsonObject:
    refund = event.refund
    return {
        "refund": {
            "cf_refund_id": int(refund.cf_refund_id),
            "cf_payment_id": int(refund.cf_payment_id),
            "refund_id": refund.refund_id,
            "order_id": refund.order_id,
            "refund_amount": refund.amount,
            "refund_currency": refund.currency,
            "entity": "Refund",
            "refund_type": "MERCHANT_INITIATED",
            "refund_arn": refund.arn,
            "refund_status": refund.status.value,
            "status_description": refund.status_description,
            "created_at": cashfree_time(refund.created_at),
            "processed_at": cashfree_time(refund.processed_at) if refund.processed_at else None,
            "refund_charge": 0,
            "refund_note": refund.note,
            "refund_splits": [],
            "metadata": None,
            "refund_mode": refund.speed,
        }
    }


def _settlement_data(event: Settled) -> JsonObject:
    batch, shares = event.batch, event.settlements
    settled = sum((share.settlement_amount for share in shares), Decimal(0))
    times = [share.payment_time for share in shares]
    return {
        "settlement": {
            "adjustment": Decimal("0.00"),
            "amount_settled": settled,
            "payment_amount": sum((share.order_amount for share in shares), Decimal(0)),
            "payment_from": cashfree_time(min(times)),
            "payment_till": cashfree_time(max(times)),
            "reason": None,
            "service_charge": sum((share.service_charge for share in shares), Decimal(0)),
            "service_tax": sum((share.service_tax for share in shares), Decimal(0)),
            "settled_on": cashfree_time(batch.transfer_time),
            "settlement_amount": settled,
            "settlement_charge": Decimal("0.00"),
            "settlement_id": batch.settlement_id,
            "settlement_initiated_on": cashfree_time(batch.transfer_time),
            "settlement_tax": Decimal("0.00"),
            "settlement_type": "Standard",
            "status": "SUCCESS",
            "utr": batch.utr,
            "remarks": None,
        }
    }


def target_of(event: SandboxEvent) -> tuple[str | None, str | None]:
    """``(order_id, notify_url)``: settlements belong to no order and go to the dashboard URL."""
    if isinstance(event, Settled):
        return None, None
    order = event.order
    return order.order_id, order.meta.get("notify_url")

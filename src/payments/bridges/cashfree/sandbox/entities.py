"""The JSON shapes the PG API answers with (SPEC ``OrderEntity``, ``PaymentEntity``, ``RefundEntity``,
``SettlementEntity``, ``PayOrderEntity``, ``SimulationResponse``).

Absent optional values are left out rather than sent as null, so every answer validates against the
spec; the exceptions follow FACTS: ``error_details`` is null on a successful payment.
"""

from __future__ import annotations

from typing import Any

from payments.bridges.cashfree.sandbox.clock import cashfree_time
from payments.bridges.cashfree.sandbox.model import Attempt, Order, OrderSettlement, Refund, Simulation
from payments.bridges.cashfree.sandbox.states import PaymentStatus

JsonObject = dict[str, Any]


def _present(fields: JsonObject) -> JsonObject:
    return {key: value for key, value in fields.items() if value is not None}


def order_entity(order: Order) -> JsonObject:
    return _present(
        {
            "cf_order_id": order.cf_order_id,
            "order_id": order.order_id,
            "entity": "order",
            "order_currency": order.currency,
            "order_amount": order.amount,
            "order_status": order.status.value,
            "payment_session_id": order.payment_session_id,
            "order_expiry_time": cashfree_time(order.expiry_time),
            "order_note": order.note,
            "created_at": cashfree_time(order.created_at),
            "order_splits": order.splits,
            "customer_details": order.customer,
            "order_meta": order.meta,
            "order_tags": order.tags,
        }
    )


def payment_entity(order: Order, attempt: Attempt) -> JsonObject:
    fields = _present(
        {
            "cf_payment_id": attempt.cf_payment_id,
            "order_id": order.order_id,
            "entity": "payment",
            "is_captured": attempt.status is PaymentStatus.SUCCESS,
            "order_amount": order.amount,
            "order_currency": order.currency,
            "payment_group": attempt.group,
            "payment_currency": attempt.currency,
            "payment_amount": attempt.amount,
            "payment_time": cashfree_time(attempt.started_at),
            "payment_completion_time": cashfree_time(attempt.completed_at) if attempt.completed_at else None,
            "payment_status": attempt.status.value,
            "payment_message": attempt.message,
            "bank_reference": attempt.bank_reference,
            "payment_method": {attempt.method: attempt.method_details},
            "international_payment": {"international": False},
            "payment_gateway_details": {
                "gateway_name": "CASHFREE",
                "gateway_payment_id": attempt.cf_payment_id,
            },
        }
    )
    # Cashfree sends null error_details while an attempt is pending or once it succeeded (FACTS §4).
    fields["error_details"] = attempt.error
    return fields


def pay_entity(attempt: Attempt, link: str) -> JsonObject:
    """Order Pay's answer: UPI collect waits on the customer's phone ("custom"); card and netbanking
    hand over a page to open ("link", the sandbox's own attempt page)."""
    channel = str(attempt.method_details["channel"])
    waits_on_phone = attempt.method == "upi"
    return {
        "payment_amount": attempt.amount,
        "cf_payment_id": attempt.cf_payment_id,
        "payment_method": attempt.method,
        "channel": channel,
        "action": "custom" if waits_on_phone else "link",
        "data": {} if waits_on_phone else {"url": link, "method": "GET", "content_type": "text/html"},
    }


def refund_entity(refund: Refund) -> JsonObject:
    return _present(
        {
            "cf_payment_id": refund.cf_payment_id,
            "cf_refund_id": refund.cf_refund_id,
            "order_id": refund.order_id,
            "refund_id": refund.refund_id,
            "entity": "refund",
            "refund_amount": refund.amount,
            "refund_currency": refund.currency,
            "refund_note": refund.note,
            "refund_status": refund.status.value,
            "refund_arn": refund.arn,
            "refund_charge": 0,
            "status_description": refund.status_description,
            "refund_splits": [],
            "refund_type": "MERCHANT_INITIATED",
            "refund_mode": refund.speed,
            "created_at": cashfree_time(refund.created_at),
            "processed_at": cashfree_time(refund.processed_at) if refund.processed_at else None,
            "refund_speed": {"requested": refund.speed, "accepted": refund.speed, "processed": refund.speed},
        }
    )


def settlement_entity(share: OrderSettlement) -> JsonObject:
    batch = share.batch
    return {
        "cf_payment_id": share.cf_payment_id,
        "cf_settlement_id": batch.cf_settlement_id,
        "settlement_currency": share.currency,
        "order_id": share.order_id,
        "entity": "settlement",
        "order_amount": share.order_amount,
        "payment_time": cashfree_time(share.payment_time),
        "service_charge": share.service_charge,
        "service_tax": share.service_tax,
        "settlement_amount": share.settlement_amount,
        "settlement_id": batch.settlement_id,
        "transfer_id": batch.transfer_id,
        "transfer_time": cashfree_time(batch.transfer_time),
        "transfer_utr": batch.utr,
    }


def simulation_entity(simulation: Simulation) -> JsonObject:
    wanted = _present(
        {
            "payment_status": simulation.payment_status,
            "payment_error_code": simulation.payment_error_code,
        }
    )
    return {
        "simulation_id": simulation.simulation_id,
        "entity": simulation.entity,
        "entity_id": simulation.entity_id,
        "entity_simulation": wanted,
    }

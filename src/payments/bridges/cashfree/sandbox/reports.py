"""Report rows: ``/settlements`` (SettlementEntity per order), ``/settlement/recon`` (grouped details per
settled payment) and ``/recon`` (one row per account event: PAYMENT credits, REFUND debits,
SETTLEMENT payouts). Rows carry their sort key for ``paging.paginate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from payments.bridges.cashfree.sandbox.clock import cashfree_time
from payments.bridges.cashfree.sandbox.entities import JsonObject, settlement_entity
from payments.bridges.cashfree.sandbox.model import (
    Attempt,
    Ledger,
    Order,
    OrderSettlement,
    Refund,
    SettlementBatch,
)
from payments.bridges.cashfree.sandbox.paging import Row, TimeRange
from payments.bridges.cashfree.sandbox.settlements import charges, matching
from payments.bridges.cashfree.sandbox.states import PaymentStatus, RefundStatus


def _present(fields: JsonObject) -> JsonObject:
    return {key: value for key, value in fields.items() if value is not None}


def settlement_rows(ledger: Ledger, filters: dict[str, Any], window: TimeRange) -> list[Row]:
    """``POST /settlements``: one SettlementEntity per settled order whose payout is in ``window``."""
    return [
        ((share.batch.transfer_time, share.cf_payment_id), settlement_entity(share))
        for share in matching(ledger, filters)
        if share.batch.transfer_time in window
    ]


def settlement_recon_rows(ledger: Ledger, filters: dict[str, Any], window: TimeRange) -> list[Row]:
    """``POST /settlement/recon``: each settled payment, grouped as SPEC's SettlementReconEntity."""
    return [
        ((share.batch.transfer_time, share.cf_payment_id), _settled_payment(ledger, share))
        for share in matching(ledger, filters)
        if share.batch.transfer_time in window
    ]


def _settled_payment(ledger: Ledger, share: OrderSettlement) -> JsonObject:
    order, payment = ledger.orders[share.order_id], ledger.attempts[share.cf_payment_id]
    # SettlementReconEntity types customer_bank_code as a string, unlike Create Order.
    customer = {
        key: str(value) if key == "customer_bank_code" else value for key, value in order.customer.items()
    }
    order_details = {
        "order_id": order.order_id,
        "order_amount": order.amount,
        "order_currency": order.currency,
    }
    return {
        "event_details": _settled_event(payment, share),
        "order_details": order_details | ({"order_tags": order.tags} if order.tags else {}),
        "customer_details": customer,
        "payment_details": _settled_payment_details(payment, share),
        "settlement_details": _settlement_details(share),
    }


def _settled_event(payment: Attempt, share: OrderSettlement) -> JsonObject:
    return {
        **_event("PAYMENT", payment.cf_payment_id, payment.amount, share.settlement_amount, "CREDIT"),
        "event_status": "SUCCESS",
        "event_time": cashfree_time(share.payment_time),
        "event_currency": payment.currency,
        "event_service_charge": share.service_charge,
        "event_service_tax": share.service_tax,
    }


def _settled_payment_details(payment: Attempt, share: OrderSettlement) -> JsonObject:
    return _present(
        {
            "payment_amount": payment.amount,
            "payment_currency": payment.currency,
            "bank_reference": payment.bank_reference,
            "payment_time": cashfree_time(share.payment_time),
            "payment_mode": payment.group.upper(),
            "payment_service_charge": share.service_charge,
            "payment_service_tax": share.service_tax,
            "cf_payment_id": payment.cf_payment_id,
            "status": payment.status.value,
        }
    )


def _settlement_details(share: OrderSettlement) -> JsonObject:
    batch = share.batch
    return {
        "cf_settlement_id": batch.cf_settlement_id,
        "settlement_date": cashfree_time(batch.transfer_time),
        "utr": batch.utr,
        "service_charge": share.service_charge,
        "service_tax": share.service_tax,
        "settlement_type": "Standard",
        "settlement_initiated_on": cashfree_time(batch.transfer_time),
    }


def account_events(ledger: Ledger, window: TimeRange) -> list[Row]:
    """``POST /recon``: every successful payment, live refund and settlement batch in ``window``."""
    rows = [*_payment_rows(ledger), *_refund_rows(ledger), *_batch_rows(ledger)]
    return [row for row in rows if row[0][0] in window]


def _payment_rows(ledger: Ledger) -> Iterator[Row]:
    for payment in ledger.attempts.values():
        if payment.status is PaymentStatus.SUCCESS and payment.completed_at is not None:
            yield (payment.completed_at, payment.cf_payment_id), _payment_event(ledger, payment)


def _payment_event(ledger: Ledger, payment: Attempt) -> JsonObject:
    order = ledger.orders[payment.order_id]
    charge, tax = charges(payment.amount)
    time = cashfree_time(payment.completed_at or payment.started_at)
    share = ledger.settlements.get(order.order_id)
    settled = share is not None and share.cf_payment_id == payment.cf_payment_id
    return _present(
        {
            **_event(
                "PAYMENT", payment.cf_payment_id, payment.amount, payment.amount - charge - tax, "CREDIT"
            ),
            "event_status": payment.status.value,
            "event_time": time,
            "event_currency": payment.currency,
            **_order_fields(order),
            "payment_amount": payment.amount,
            "payment_time": time,
            "payment_service_charge": charge,
            "payment_service_tax": tax,
            "cf_payment_id": payment.cf_payment_id,
            "payment_utr": payment.bank_reference,
            **(_settled_fields(share.batch) if share is not None and settled else {}),
        }
    )


def _refund_rows(ledger: Ledger) -> Iterator[Row]:
    for refund in ledger.refunds.values():
        if refund.status is not RefundStatus.CANCELLED:
            yield (
                (refund.created_at, refund.cf_refund_id),
                _refund_event(ledger.orders[refund.order_id], refund),
            )


def _refund_event(order: Order, refund: Refund) -> JsonObject:
    return _present(
        {
            **_event("REFUND", refund.cf_refund_id, refund.amount, -refund.amount, "DEBIT"),
            "event_status": refund.status.value,
            "event_time": cashfree_time(refund.created_at),
            "event_currency": refund.currency,
            **_order_fields(order),
            "cf_payment_id": refund.cf_payment_id,
            "refund_id": refund.refund_id,
            "refund_arn": refund.arn,
            "refund_note": refund.note,
            "refund_processed_at": cashfree_time(refund.processed_at) if refund.processed_at else None,
        }
    )


def _batch_rows(ledger: Ledger) -> Iterator[Row]:
    for batch in ledger.batches:
        shares = [ledger.settlements[order_id] for order_id in batch.order_ids]
        yield (batch.transfer_time, batch.cf_settlement_id), _batch_event(batch, shares)


def _batch_event(batch: SettlementBatch, shares: list[OrderSettlement]) -> JsonObject:
    settled = sum((share.settlement_amount for share in shares), Decimal(0))
    return {
        **_event("SETTLEMENT", batch.cf_settlement_id, settled, settled, "DEBIT"),
        "event_status": "SUCCESS",
        "event_time": cashfree_time(batch.transfer_time),
        "event_currency": shares[0].currency,
        **_settled_fields(batch),
        "amount_settled": settled,
        "adjustment": Decimal("0.00"),
        "service_charge": sum((share.service_charge for share in shares), Decimal(0)),
        "service_tax": sum((share.service_tax for share in shares), Decimal(0)),
        "settlement_type": "Standard",
        "settlement_initiated_on": cashfree_time(batch.transfer_time),
        "payment_from": cashfree_time(min(share.payment_time for share in shares)),
        "payment_till": cashfree_time(max(share.payment_time for share in shares)),
    }


def _event(kind: str, event_id: str, amount: Decimal, settlement: Decimal, sale: str) -> JsonObject:
    return {
        "event_id": event_id,
        "event_type": kind,
        "event_amount": amount,
        "event_settlement_amount": settlement,
        "sale_type": sale,
    }


def _order_fields(order: Order) -> JsonObject:
    customer = order.customer
    return {
        "order_id": order.order_id,
        "order_amount": order.amount,
        "customer_phone": customer.get("customer_phone"),
        "customer_email": customer.get("customer_email"),
        "customer_name": customer.get("customer_name"),
    }


def _settled_fields(batch: SettlementBatch) -> JsonObject:
    return {
        "cf_settlement_id": batch.cf_settlement_id,
        "settlement_date": cashfree_time(batch.transfer_time),
        "settlement_utr": batch.utr,
    }

"""JSON-friendly views of records: amounts as exact strings, times as ISO 8601 in UTC.

Findings, the input digest and the reports all describe records through these, so the same record
always reads the same way, whichever run or process wrote it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from payments.domain.gateway import GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money
from payments.domain.reconciliation.model import (
    OurPayment,
    OurRefund,
    OurSettlement,
    OurWebhook,
)


def iso(moment: datetime | None) -> str | None:
    """``moment`` in UTC as ISO 8601; a naive time is taken to be UTC already (never local time)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def decimal(value: Decimal) -> str:
    """The exact digits, never an exponent (``Decimal("1E+2")`` reads ``100``)."""
    return format(value, "f")


def amount(money: Money | None) -> str | None:
    return None if money is None else decimal(money.amount)


def plain(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value reads best
    """Any value made of Money, Decimal, datetimes, enums, mappings and sequences, as plain JSON."""
    if isinstance(value, Money):
        return {"amount": decimal(value.amount), "currency": value.currency}
    if isinstance(value, Decimal):
        return decimal(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def dumps(value: Any) -> str:
    """Canonical compact JSON: sorted keys, no spaces, UTF-8 text as is."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def our_settlement(settlement: OurSettlement) -> dict[str, Any]:
    return {
        "settlement_id": settlement.settlement_id,
        "attempt_id": settlement.attempt_id,
        "amount": amount(settlement.amount),
        "currency": settlement.amount.currency,
        "utr": settlement.utr,
        "settled_at": iso(settlement.settled_at),
    }


def our_payment(payment: OurPayment) -> dict[str, Any]:
    settlements = sorted((our_settlement(s) for s in payment.settlements), key=dumps)
    return {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "amount": amount(payment.amount),
        "currency": payment.amount.currency,
        "status": payment.status,
        "successful_attempt_ids": sorted(payment.successful_attempt_ids),
        "succeeded_at": iso(payment.succeeded_at),
        "settlements": settlements,
    }


def our_refund(refund: OurRefund) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "amount": amount(refund.amount),
        "currency": refund.amount.currency,
        "status": refund.status,
        "gateway_refund_id": refund.gateway_refund_id,
    }


def our_webhook(webhook: OurWebhook) -> dict[str, Any]:
    return {
        "webhook_id": webhook.webhook_id,
        "event_type": webhook.event_type,
        "status": webhook.status,
        "received_at": iso(webhook.received_at),
        "order_id": webhook.order_id,
    }


def gateway_settlement(settlement: GatewaySettlement) -> dict[str, Any]:
    return {
        "settlement_id": settlement.settlement_id,
        "order_id": settlement.order_id,
        "attempt_id": settlement.attempt_id,
        "order_amount": amount(settlement.order_amount),
        "service_charge": amount(settlement.service_charge),
        "service_tax": amount(settlement.service_tax),
        "settlement_amount": amount(settlement.settlement_amount),
        "currency": settlement.settlement_amount.currency,
        "utr": settlement.utr,
        "paid_at": iso(settlement.paid_at),
        "settled_at": iso(settlement.settled_at),
    }


def entry(row: ReconciliationEntry, *, with_raw: bool = False) -> dict[str, Any]:
    """A report row; ``raw`` (the gateway's whole row) only for the digest, never in findings."""
    view: dict[str, Any] = {
        "event_id": row.event_id,
        "event_type": row.event_type,
        "amount": amount(row.amount),
        "currency": row.amount.currency,
        "settlement_amount": amount(row.settlement_amount),
        "status": row.status,
        "occurred_at": iso(row.occurred_at),
        "order_id": row.order_id,
        "attempt_id": row.attempt_id,
        "refund_id": row.refund_id,
        "settlement_id": row.settlement_id,
        "utr": row.utr,
    }
    if with_raw:
        view["raw"] = plain(row.raw)
    return view

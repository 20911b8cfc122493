"""Settlements: ``POST /_sandbox/settle`` pays PAID orders out in one batch, net of Cashfree's charges.

``settlement_amount = order_amount - service_charge - service_tax`` with a 2 % service charge and 18 %
GST on that charge, each rounded half-up to the paisa. Refunds are not netted off (Cashfree recovers
them from later settlements; the sandbox leaves that out). One SETTLEMENT_SUCCESS webhook per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from payments.bridges.cashfree.sandbox.errors import bad_value, invalid, not_found
from payments.bridges.cashfree.sandbox.events import SandboxEvent, Settled
from payments.bridges.cashfree.sandbox.model import (
    Ledger,
    Order,
    OrderSettlement,
    SettlementBatch,
    new_reference,
)
from payments.bridges.cashfree.sandbox.states import OrderStatus, PaymentStatus
from payments.bridges.cashfree.sandbox.validation import PAISE

#: Cashfree's service charge on a payment, and GST on that charge.
SERVICE_CHARGE_RATE: Final = Decimal("0.02")
GST_RATE: Final = Decimal("0.18")


def charges(amount: Decimal) -> tuple[Decimal, Decimal]:
    """``(service_charge, service_tax)`` for a payment of ``amount``."""
    charge = (amount * SERVICE_CHARGE_RATE).quantize(PAISE, rounding=ROUND_HALF_UP)
    return charge, (charge * GST_RATE).quantize(PAISE, rounding=ROUND_HALF_UP)


def settle(
    ledger: Ledger, order_id: str | None, now: datetime
) -> tuple[SettlementBatch | None, list[SandboxEvent]]:
    """Settle one PAID order, or every PAID order not settled yet; None when there is nothing to do."""
    if order_id is not None and ledger.order(order_id).status is not OrderStatus.PAID:
        raise invalid("order_not_paid", "only PAID orders can be settled")
    candidates = [ledger.order(order_id)] if order_id is not None else list(ledger.orders.values())
    due = [o for o in candidates if o.status is OrderStatus.PAID and o.order_id not in ledger.settlements]
    if not due:
        return None, []
    batch = SettlementBatch(
        ledger.next_cf_id(),
        ledger.next_number(),
        ledger.next_number(),
        new_reference(),
        now,
        tuple(order.order_id for order in due),
    )
    ledger.batches.append(batch)
    shares = tuple(_share(ledger, order, batch) for order in due)
    for share in shares:
        ledger.settlements[share.order_id] = share
    return batch, [Settled(batch, shares, now)]


def _share(ledger: Ledger, order: Order, batch: SettlementBatch) -> OrderSettlement:
    attempts = (ledger.attempts[cf_id] for cf_id in order.attempt_ids)
    payment = next(attempt for attempt in attempts if attempt.status is PaymentStatus.SUCCESS)
    charge, tax = charges(payment.amount)
    paid_at = payment.completed_at or payment.started_at
    return OrderSettlement(
        order.order_id, payment.cf_payment_id, batch, payment.amount, order.currency, paid_at, charge, tax
    )


def settlement_of(ledger: Ledger, order: Order) -> OrderSettlement:
    """The order's settlement; 404 ``settlement_not_found`` until it is settled."""
    try:
        return ledger.settlements[order.order_id]
    except KeyError:
        raise not_found("settlement_not_found", "order is not settled yet") from None


def matching(ledger: Ledger, filters: dict[str, Any]) -> Iterable[OrderSettlement]:
    """Settlements whose batch id or UTR is among the filters' lists (when given)."""
    ids = _string_list(filters, "cf_settlement_ids")
    utrs = _string_list(filters, "settlement_utrs")
    for share in ledger.settlements.values():
        if ids is not None and share.batch.cf_settlement_id not in ids:
            continue
        if utrs is not None and share.batch.utr not in utrs:
            continue
        yield share


def _string_list(filters: dict[str, Any], name: str) -> frozenset[str] | None:
    value = filters.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_value(f"filters.{name}", "must be a list of strings")
    return frozenset(value)

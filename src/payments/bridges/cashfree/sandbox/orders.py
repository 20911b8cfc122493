"""Orders: create (with Cashfree's validation), expire on the sandbox clock, terminate.

Validation follows SPEC ``CreateOrderRequest`` and FACTS §2; the first broken rule answers 400 with
its Cashfree-style code. Only INR is enabled, as on a fresh Cashfree account.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from payments.bridges.cashfree.sandbox import validation as check
from payments.bridges.cashfree.sandbox.clock import parse_time
from payments.bridges.cashfree.sandbox.errors import already_exists, bad_value, invalid
from payments.bridges.cashfree.sandbox.model import Ledger, Order, TimerKind, new_session_id
from payments.bridges.cashfree.sandbox.states import (
    ORDER_TRANSITIONS,
    OrderStatus,
    OrderTrigger,
    PaymentStatus,
    transition,
)

#: Cashfree's examples show expiry ≈ 30 days after creation when none is given (FACTS §2).
DEFAULT_EXPIRY: Final = timedelta(days=30)
#: The currencies this simulated account has enabled.
ENABLED_CURRENCIES: Final = frozenset({"INR"})
#: Ten digits, or ``+`` and an international number (PY6).
PHONE: Final = re.compile(r"^(\d{10}|\+\d{8,15})$")
EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+$")
#: SPEC ``maxProperties`` for ``order_tags``.
MAX_TAGS: Final = 15


@dataclass(frozen=True)
class OrderRequest:
    """A validated Create Order body."""

    order_id: str | None
    amount: Decimal
    currency: str
    customer: dict[str, Any]
    meta: dict[str, Any]
    expiry: datetime
    note: str | None
    tags: dict[str, str] | None
    splits: list[Any]


def parse_order(body: dict[str, Any], now: datetime) -> OrderRequest:
    """Check ``body`` field by field; the first broken rule answers 400."""
    order_id = check.text(body, "order_id", lengths=(3, 45), pattern=check.ID_CHARACTERS)
    amount = check.amount(body, "order_amount", minimum=Decimal(1))
    currency, customer, meta = _currency(body), _customer(body), _meta(body)
    expiry = _expiry(body, now)
    note = check.text(body, "order_note", lengths=(3, 200))
    splits = body.get("order_splits") or []
    if not isinstance(splits, list):
        raise bad_value("order_splits", "must be a list")
    return OrderRequest(order_id, amount, currency, customer, meta, expiry, note, _tags(body), splits)


def create_order(ledger: Ledger, body: dict[str, Any], now: datetime) -> Order:
    """Validate ``body`` and store a new ACTIVE order; 409 when its ``order_id`` is taken."""
    wanted = parse_order(body, now)
    order_id = wanted.order_id or f"order_{secrets.token_hex(12)}"
    if order_id in ledger.orders:
        raise already_exists("order_already_exists", "order with same id is already present")
    order = Order(
        order_id=order_id,
        cf_order_id=ledger.next_cf_id(),
        amount=wanted.amount,
        currency=wanted.currency,
        payment_session_id=new_session_id(),
        created_at=now,
        expiry_time=wanted.expiry,
        customer=wanted.customer,
        meta=wanted.meta,
        tags=wanted.tags,
        note=wanted.note,
        splits=wanted.splits,
    )
    ledger.orders[order_id] = order
    ledger.sessions[order.payment_session_id] = order_id
    ledger.schedule(order.expiry_time, TimerKind.EXPIRE_ORDER, order_id)
    return order


def _currency(body: dict[str, Any]) -> str:
    currency = check.text(body, "order_currency", lengths=(1, 10), required=True)
    if currency not in ENABLED_CURRENCIES:
        raise invalid("order_currency_invalid", f"order_currency {currency!r} is not enabled")
    return str(currency)


def _customer(body: dict[str, Any]) -> dict[str, Any]:
    data = check.sub_object(body, "customer_details", required=True)
    assert data is not None  # required=True raises instead of returning None
    path = "customer_details."
    fields = {
        "customer_id": check.text(
            data, path + "customer_id", lengths=(3, 50), required=True, pattern=check.ID_CHARACTERS
        ),
        "customer_phone": check.text(
            data, path + "customer_phone", lengths=(9, 16), required=True, pattern=PHONE
        ),
        "customer_email": check.text(data, path + "customer_email", lengths=(3, 100), pattern=EMAIL),
        "customer_name": check.text(data, path + "customer_name", lengths=(3, 100)),
        "customer_bank_account_number": check.text(
            data, path + "customer_bank_account_number", lengths=(3, 20)
        ),
        "customer_bank_ifsc": check.text(data, path + "customer_bank_ifsc", lengths=(1, 20)),
        "customer_uid": check.text(data, path + "customer_uid", lengths=(1, 100)),
    }
    bank_code = data.get("customer_bank_code")
    if bank_code is not None:
        if isinstance(bank_code, bool) or not isinstance(bank_code, int):
            raise bad_value(path + "customer_bank_code", "must be a number")
        fields["customer_bank_code"] = bank_code
    return {key: value for key, value in fields.items() if value is not None}


def _meta(body: dict[str, Any]) -> dict[str, Any]:
    data = check.sub_object(body, "order_meta")
    if data is None:
        return {}
    fields = {
        "return_url": check.web_url(data, "order_meta.return_url"),
        "notify_url": check.web_url(data, "order_meta.notify_url"),
        "payment_methods": check.text(data, "order_meta.payment_methods", lengths=(1, 250)),
        "payment_methods_filters": check.sub_object(data, "order_meta.payment_methods_filters"),
    }
    return {key: value for key, value in fields.items() if value is not None}


def _expiry(body: dict[str, Any], now: datetime) -> datetime:
    text = check.text(body, "order_expiry_time", lengths=(10, 40))
    if text is None:
        return now + DEFAULT_EXPIRY
    try:
        expiry = parse_time(text)
    except ValueError:
        raise bad_value("order_expiry_time", "must be an ISO 8601 date-time") from None
    if expiry <= now:
        raise bad_value("order_expiry_time", "must be in the future")
    return expiry


def _tags(body: dict[str, Any]) -> dict[str, str] | None:
    tags = check.sub_object(body, "order_tags")
    if tags is None:
        return None
    valid = all(isinstance(value, str) and 1 <= len(value) <= 255 for value in tags.values())
    if len(tags) > MAX_TAGS or not valid:
        raise bad_value("order_tags", f"at most {MAX_TAGS} tags, each value 1 to 255 characters")
    return {str(key): str(value) for key, value in tags.items()}


def expire_if_due(order: Order, now: datetime) -> bool:
    """Move an ACTIVE order past its expiry time to EXPIRED; True when it changed."""
    if order.status is OrderStatus.ACTIVE and now >= order.expiry_time:
        order.status = transition(ORDER_TRANSITIONS, order.status, OrderTrigger.EXPIRE)
        return True
    return False


def terminate(ledger: Ledger, order: Order, body: dict[str, Any], now: datetime) -> Order:
    """PATCH ``{"order_status": "TERMINATED"}``: TERMINATED at once, or TERMINATION_REQUESTED while
    an attempt is in flight. Terminating again is a no-op; PAID and EXPIRED orders refuse."""
    if body.get("order_status") != OrderStatus.TERMINATED.value:
        raise bad_value("order_status", "the only accepted value is TERMINATED")
    expire_if_due(order, now)
    if order.status in {OrderStatus.TERMINATED, OrderStatus.TERMINATION_REQUESTED}:
        return order
    if order.status is not OrderStatus.ACTIVE:
        raise invalid("order_not_active", f"order is {order.status.value} and cannot be terminated")
    trigger = OrderTrigger.REQUEST_TERMINATION if has_pending(ledger, order) else OrderTrigger.TERMINATE
    order.status = transition(ORDER_TRANSITIONS, order.status, trigger)
    return order


def has_pending(ledger: Ledger, order: Order) -> bool:
    """Whether any attempt of ``order`` is still PENDING."""
    return any(ledger.attempts[cf_id].status is PaymentStatus.PENDING for cf_id in order.attempt_ids)

"""What each email says: template contexts built from a message and the records it names. Pure.

Templates get plain strings only, already formatted for a reader, the way the invoice PDF prints them:
amounts in the currency's decimals, rupees grouped the Indian way (``1,23,456.50``) and other
currencies by thousands (``123,456.50``); times in India Standard Time with the zone named
(``26 Nov 2026, 15:30 IST``), with month names that do not depend on the process locale. Nothing here
reaches the network; the agent loads the records and hands them in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from payments.domain.gateway import GatewayAttempt
from payments.domain.invoice.model import Invoice
from payments.domain.money import Money
from payments.domain.notification.model import EmailRequest
from payments.domain.payment.model import Payment
from payments.domain.refund.model import Refund

#: Customers are in India; every time in an email is shown in IST (no daylight saving there).
CUSTOMER_ZONE: Final = ZoneInfo("Asia/Kolkata")
#: Locale-independent month names.
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: Gateway failure reasons (Cashfree's ``error_reason`` and attempt statuses, lower-cased) in plain
#: words. Exact matches first; then ``_REASON_WORDS`` by the words a free-text reason contains.
_PLAIN_REASONS: Final[Mapping[str, str]] = {
    "auth_declined": "Your bank declined the payment.",
    "bank_rejected": "Your bank declined the payment.",
    "user_dropped": "The payment was not completed: the payment page was closed before it finished.",
    "cancelled": "The payment was cancelled before it was completed.",
    "void": "The payment was cancelled before it was completed.",
    "not_attempted": "The payment was not attempted.",
    "order_already_paid": "This order has already been paid.",
    "insufficient_funds": "There was not enough balance in the account.",
    "insufficient_balance": "There was not enough balance in the account.",
    "card_expired": "The card has expired.",
    "invalid_card": "The card details were not accepted.",
    "incorrect_otp": "The one-time password (OTP) was incorrect.",
    "otp_expired": "The one-time password (OTP) expired before it was entered.",
    "authentication_failed": "The card or account verification did not succeed.",
    "upi_timeout": "The UPI request was not approved in time.",
    "invalid_vpa": "The UPI ID was not recognised.",
    "transaction_limit_exceeded": "The payment is above the limit your bank allows.",
    "blocked by fraud screening": "We could not accept this payment.",
}
_REASON_WORDS: Final[tuple[tuple[tuple[str, ...], str], ...]] = (
    (("insufficient", "balance"), "There was not enough balance in the account."),
    (("otp",), "The one-time password (OTP) check did not succeed."),
    (("expired",), "The payment was not completed in time."),
    (("timeout", "timed out"), "Your bank did not respond in time."),
    (("limit",), "The payment is above the limit your bank allows."),
    (("declined", "rejected"), "Your bank declined the payment."),
    (("fraud", "risk", "blocked"), "We could not accept this payment."),
    (("dropped", "abandon", "closed"), "The payment was not completed: the payment page was closed."),
)
#: What a reason we cannot read becomes; the customer still gets a way forward.
FALLBACK_REASON: Final = "The payment did not go through."

#: When a refund reaches the customer, by refund speed (Cashfree's ``refund_speed``).
_REFUND_ETA: Final[Mapping[str, str]] = {
    "INSTANT": "within minutes",
    "STANDARD": "within 5 to 7 working days (your bank's usual time for refunds)",
}
_REFUND_STATUS: Final[Mapping[str, str]] = {
    "INITIATED": "Requested",
    "PROCESSING": "On its way",
    "SUCCESS": "Refunded",
    "FAILED": "Could not be completed",
    "REVERSED": "Reversed by the bank",
}


@dataclass(frozen=True, kw_only=True)
class Contacts:
    """Who customers write to and call, and the links emails carry (from ``settings.email``)."""

    support_email: str
    support_phone: str
    #: ``{paymentId}`` is replaced by the payment's id.
    payment_retry_url: str
    #: The admin page (``{public_base_url}/admin``).
    admin_url: str


def format_amount(amount: Decimal | str, currency: str) -> str:
    """``"123456.5"`` -> ``"1,23,456.50"`` in INR, ``"123,456.50"`` in USD: exact, never a float."""
    money = Money.of(amount if isinstance(amount, Decimal) else str(amount), currency)
    whole, _, fraction = f"{abs(money.amount):.{Money.places(currency)}f}".partition(".")
    grouped = _indian_grouping(whole) if currency == "INR" else f"{int(whole):,}"
    sign = "-" if money.amount < 0 else ""
    return f"{sign}{grouped}{'.' + fraction if fraction else ''}"


def _indian_grouping(digits: str) -> str:
    # The last three digits, then pairs: 12,34,567.
    head, tail = digits[:-3], digits[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join(part for part in (head, *pairs, tail) if part)


def format_time(at: datetime) -> str:
    """``26 Nov 2026, 15:30 IST``; a naive time is taken as UTC."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("UTC"))
    local = aware.astimezone(CUSTOMER_ZONE)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {local.tzname()}"


def plain_failure_reason(reason: str | None) -> str:
    """A gateway's failure reason (code or text) as a customer would say it."""
    if not reason:
        return FALLBACK_REASON
    normalised = reason.strip().lower()
    exact = _PLAIN_REASONS.get(normalised) or _PLAIN_REASONS.get(re.sub(r"[\s-]+", "_", normalised))
    if exact is not None:
        return exact
    for words, plain in _REASON_WORDS:
        if any(word in normalised for word in words):
            return plain
    return FALLBACK_REASON


def refund_eta(speed: str | None, status: str) -> str:
    """When the money arrives, in words; a refund that ended says so instead."""
    if status == "SUCCESS":
        return "The refund is complete; your bank may take a little longer to show it."
    if status in {"FAILED", "REVERSED"}:
        return "No money is on its way; please contact support."
    return _REFUND_ETA.get((speed or "STANDARD").upper(), _REFUND_ETA["STANDARD"])


def _support(contacts: Contacts) -> dict[str, str]:
    return {"support_email": contacts.support_email, "support_phone": contacts.support_phone}


def payment_success(
    payment: Payment,
    invoice: Invoice,
    *,
    paid_at: datetime,
    paid_by: GatewayAttempt | None = None,
    contacts: Contacts,
) -> dict[str, Any]:
    """The customer's receipt: what was paid, when, how, and the invoice (attached).

    ``paid_by`` is the successful attempt, if known: it names the transaction and method when the
    payment itself does not (as the invoice does).
    """
    transaction = payment.gateway_payment_id or (paid_by.attempt_id if paid_by else None)
    return {
        "payment_id": payment.payment_id,
        "transaction_id": transaction or "—",
        "amount": format_amount(payment.amount.amount, payment.amount.currency),
        "currency": payment.amount.currency,
        "method": _method(payment.payment_method or (paid_by.method if paid_by else None)),
        "paid_at": format_time(paid_at),
        "description": payment.description or "",
        "invoice_number": invoice.number,
        "customer_name": payment.customer.name or "",
        **_support(contacts),
    }


def payment_failed(payment: Payment, *, failure_reason: str | None, contacts: Contacts) -> dict[str, Any]:
    """Why it failed, in plain words, and where to try again."""
    return {
        "payment_id": payment.payment_id,
        "amount": format_amount(payment.amount.amount, payment.amount.currency),
        "currency": payment.amount.currency,
        "reason": plain_failure_reason(failure_reason or payment.failure_reason),
        "retry_url": contacts.payment_retry_url.replace("{paymentId}", payment.payment_id),
        "customer_name": payment.customer.name or "",
        **_support(contacts),
    }


def payment_refund(
    refund: Refund, *, status: str, status_description: str | None, contacts: Contacts
) -> dict[str, Any]:
    """A refund's amount, where it stands, and when the money arrives.

    ``status`` is the one the message announced (the refund may have moved on since): each email
    describes the moment it was sent for.
    """
    return {
        "refund_id": refund.refund_id,
        "payment_id": refund.payment_id,
        "amount": format_amount(refund.amount.amount, refund.amount.currency),
        "currency": refund.amount.currency,
        "status": _REFUND_STATUS.get(status, status.title()),
        "status_code": status,
        "status_note": status_description or "",
        "eta": refund_eta(refund.speed.value, status),
        **_support(contacts),
    }


def invoice_generated(invoice: Invoice) -> dict[str, Any]:
    """The billing team's copy of an issued invoice."""
    return {
        "invoice_number": invoice.number,
        "payment_id": invoice.payment_id,
        "amount": format_amount(invoice.amount.amount, invoice.amount.currency),
        "currency": invoice.amount.currency,
        "issued_at": format_time(invoice.issued_at),
    }


def admin_alert(request: EmailRequest, *, contacts: Contacts) -> dict[str, Any]:
    """What happened (the title), since when, the numbers behind it, and where to look."""
    since = request.since or request.raised_at
    return {
        "title": request.title or "",
        "severity": (request.severity or "warning").upper(),
        "kind": request.kind or "",
        "subject": request.subject or "",
        "since": format_time(since) if since else "—",
        "raised_at": format_time(request.raised_at) if request.raised_at else "—",
        "source": request.source or "",
        "details": [(_label(key), _shown(value)) for key, value in request.details.items()],
        "admin_url": contacts.admin_url,
    }


def _method(method: str | None) -> str:
    if not method:
        return "—"
    names = {"upi": "UPI", "card": "Card", "netbanking": "Net banking", "app": "Wallet", "emi": "EMI"}
    return names.get(method.lower(), method.replace("_", " ").title())


def _label(key: str) -> str:
    """``failureRate`` / ``window_seconds`` -> ``Failure rate`` / ``Window seconds``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").strip().lower()
    return words[:1].upper() + words[1:]


def _shown(value: Any) -> str:
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return "—" if value is None else str(value)

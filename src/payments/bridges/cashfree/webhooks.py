"""Parsing Cashfree webhooks (FACTS §7) into typed, lenient events, each with its de-duplication key.

Call ``parse_webhook`` only after ``WebhookVerifier.verify`` accepted the same raw bytes: the body
is parsed here once, with ``parse_float=Decimal`` so that amounts stay exact.

De-duplication keys. Delivery is at-least-once and the body carries no event id, so each event gets
a key that is the same on every redelivery and different for different events::

    cashfree:idem:<x-idempotency-key>                      header sent (payload 2025-01-01 and later)
    cashfree:payment:<type>:<cf_payment_id>:<payment_status>
    cashfree:refund:<type>:<refund_id or cf_refund_id>:<refund_status>
    cashfree:settlement:<type>:<settlement_id>:<status>
    cashfree:dispute:<type>:<dispute_id>:<dispute_status>:<updated_at>
    cashfree:body:<sha256 of the raw body>                 any other type, or a part above missing

Each part is percent-encoded, so it holds only ``[A-Za-z0-9_.~%-]`` and ``:`` only ever separates
parts: the key is safe inside a Redis key (``webhook:event:{key}``), and the family after
``cashfree:`` keeps families from colliding. A key longer than ``MAX_DEDUP_KEY_LENGTH`` becomes
``cashfree:<family>:sha256:<hex digest of the long key>``, which no readable key can equal (the
readable forms have one part, or three and more).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from pydantic import ValidationError

from payments.bridges.cashfree.webhook_mapping import to_notification
from payments.bridges.cashfree.webhook_payloads import (
    EVENT_MODELS,
    DisputeWebhook,
    PaymentWebhook,
    RefundWebhook,
    SettlementWebhook,
    UnknownWebhook,
    WebhookDispute,
    WebhookEvent,
    WebhookPayment,
    WebhookRefund,
    WebhookSettlement,
)
from payments.domain.errors import InvalidPayload
from payments.domain.webhook.notification import GatewayNotification

#: What names the customer in a webhook's ``data.customer_details``: kept only in the sealed body.
CUSTOMER_IDENTITY: Final = frozenset({"customer_name", "customer_email", "customer_phone"})

#: Sent by Cashfree with payload version 2025-01-01 and later: one value per distinct event.
IDEMPOTENCY_HEADER: Final = "x-idempotency-key"
VERSION_HEADER: Final = "x-webhook-version"

#: Longer keys are replaced by a digest; real readable keys stay well under this (about 100 at most).
MAX_DEDUP_KEY_LENGTH: Final = 160

_PREFIX: Final = "cashfree"

__all__ = [
    "IDEMPOTENCY_HEADER",
    "MAX_DEDUP_KEY_LENGTH",
    "VERSION_HEADER",
    "DisputeWebhook",
    "MalformedWebhook",
    "ParsedWebhook",
    "PaymentWebhook",
    "RefundWebhook",
    "SettlementWebhook",
    "UnknownWebhook",
    "WebhookEvent",
    "dedup_key",
    "header",
    "parse_webhook",
]


class MalformedWebhook(InvalidPayload):
    """The webhook body is not a Cashfree event."""

    code = "malformed_webhook"

    def __init__(self, message: str) -> None:
        # Messages name the problem only, never the body's content (it may carry personal data).
        super().__init__(message, reason="malformed_webhook")


@dataclass(frozen=True, kw_only=True)
class ParsedWebhook:
    """One webhook: its typed event, its de-duplication key and the payload as parsed."""

    event: WebhookEvent
    dedup_key: str
    #: The ``x-webhook-version`` header (``2023-08-01``, ``2025-01-01``…), when sent.
    version: str | None = None
    #: The whole body as parsed (amounts as Decimal), for the webhook log.
    raw: Mapping[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def to_notification(self) -> GatewayNotification:
        """The event in domain terms."""
        return to_notification(self.event, dedup_key=self.dedup_key, raw=self.raw)


def parse_webhook(body: bytes, headers: Mapping[str, str]) -> ParsedWebhook:
    """Parse a verified webhook body; raise ``MalformedWebhook`` if it is not a Cashfree event.

    ``headers`` may be any mapping; names are matched without regard to case.
    """
    envelope = _load_envelope(body)
    event = _validate(envelope)
    return ParsedWebhook(
        event=event,
        dedup_key=dedup_key(event, body=body, idempotency_key=header(headers, IDEMPOTENCY_HEADER)),
        version=header(headers, VERSION_HEADER),
        raw=without_customer_identity(envelope),
    )


def without_customer_identity(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """``envelope`` without the customer's name, email and phone (``data.customer_details``).

    The parsed event is stored as the webhook log's payload and handed to agents; none of them needs
    to know who the customer is, and the body they came in is kept sealed. ``customer_id`` (our user
    id) stays.
    """
    data = envelope.get("data")
    if not isinstance(data, Mapping):
        return dict(envelope)
    customer = data.get("customer_details")
    if not isinstance(customer, Mapping):
        return dict(envelope)
    kept = {name: value for name, value in customer.items() if name not in CUSTOMER_IDENTITY}
    return {**envelope, "data": {**data, "customer_details": kept}}


def dedup_key(event: WebhookEvent, *, body: bytes, idempotency_key: str | None) -> str:
    """The key that identifies ``event`` across redeliveries (format in the module docstring)."""
    if idempotency_key:
        return _bounded("idem", [idempotency_key])
    family, parts = _identity(event)
    if family is None or not all(parts):
        # Without every identifying part, two different events could share a key and one would be
        # dropped as a duplicate; the body's digest can only repeat for a true redelivery.
        return _join("body", [hashlib.sha256(body).hexdigest()])
    return _bounded(family, [event.type, *(part for part in parts if part)])


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` (lower case) in any mapping; None when absent or empty."""
    value = headers.get(name)
    if value is None:
        value = next((item for key, item in headers.items() if key.lower() == name), None)
    return value or None


def _load_envelope(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise MalformedWebhook("the webhook body is not JSON") from None
    if not isinstance(document, dict):
        raise MalformedWebhook("the webhook body is not a JSON object")
    if not isinstance(document.get("type"), str) or not document["type"]:
        raise MalformedWebhook("the webhook body has no string 'type'")
    if not isinstance(document.get("data"), dict):
        raise MalformedWebhook("the webhook body has no object 'data'")
    return document


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and would arrive as floats: refuse them rather than let one in.
    raise ValueError(f"{name} is not a JSON number")


def _validate(envelope: dict[str, Any]) -> WebhookEvent:
    event_type: str = envelope["type"]
    model = EVENT_MODELS.get(event_type, UnknownWebhook)
    try:
        return model.model_validate(envelope)
    except ValidationError as error:
        places = sorted({".".join(map(str, item["loc"])) for item in error.errors(include_input=False)})
        # Only known types reach here (UnknownWebhook takes any object), so the type is ours to print.
        raise MalformedWebhook(f"the {event_type} payload does not fit at: {', '.join(places)}") from None


def _identity(event: WebhookEvent) -> tuple[str | None, Sequence[str | None]]:
    if isinstance(event, PaymentWebhook):
        payment = event.data.payment or WebhookPayment()
        return "payment", (payment.cf_payment_id, payment.payment_status)
    if isinstance(event, RefundWebhook):
        refund = event.data.refund or WebhookRefund()
        return "refund", (refund.refund_id or refund.cf_refund_id, refund.refund_status)
    if isinstance(event, SettlementWebhook):
        settlement = event.data.settlement or WebhookSettlement()
        return "settlement", (settlement.settlement_id, settlement.status)
    if isinstance(event, DisputeWebhook):
        dispute = event.data.dispute or WebhookDispute()
        updated = dispute.updated_at.isoformat() if dispute.updated_at else None
        return "dispute", (dispute.dispute_id, dispute.dispute_status, updated)
    return None, ()


def _bounded(family: str, parts: Sequence[str]) -> str:
    key = _join(family, [_encode(part) for part in parts])
    if len(key) <= MAX_DEDUP_KEY_LENGTH:
        return key
    return _join(family, ["sha256", hashlib.sha256(key.encode("ascii")).hexdigest()])


def _join(family: str, parts: Sequence[str]) -> str:
    return ":".join([_PREFIX, family, *parts])


def _encode(part: str) -> str:
    # surrogatepass: a JSON "\ud800" escape yields a lone surrogate, which strict UTF-8 would refuse.
    return quote(part, safe="", encoding="utf-8", errors="surrogatepass")

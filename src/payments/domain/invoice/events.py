"""The emails an issued invoice asks for (DESIGN §3, ``email.exchange``).

``email.payment.success`` is the customer's success email, sent once the invoice it attaches exists;
``email.invoice.generated`` is the billing copy. Neither carries personal data: the email agent loads
the recipient from the payment and the PDF from the invoice. Event ids derive from the invoice id, so
a retried issue can never ask for a second, different email.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from payments.domain.events import OutgoingEvent
from payments.domain.invoice.model import Invoice

#: Bumped when a payload changes incompatibly; consumers read it before anything else.
SCHEMA_VERSION: Final = 1
#: The customer's "payment received" email, with the invoice attached.
PAYMENT_SUCCESS_EMAIL: Final = "email.payment.success"
#: The billing copy of every invoice issued.
INVOICE_GENERATED_EMAIL: Final = "email.invoice.generated"


def invoice_events(invoice: Invoice, *, occurred_at: datetime) -> list[OutgoingEvent]:
    """The two email requests of a newly issued invoice."""
    success_id = f"evt_{invoice.invoice_id}.success"
    generated_id = f"evt_{invoice.invoice_id}.generated"
    money = {"amount": str(invoice.amount.amount), "currency": invoice.amount.currency}
    return [
        OutgoingEvent(
            event_id=success_id,
            routing_key=PAYMENT_SUCCESS_EMAIL,
            payload=_payload(invoice, success_id, PAYMENT_SUCCESS_EMAIL, occurred_at),
            occurred_at=occurred_at,
        ),
        OutgoingEvent(
            event_id=generated_id,
            routing_key=INVOICE_GENERATED_EMAIL,
            payload={**_payload(invoice, generated_id, INVOICE_GENERATED_EMAIL, occurred_at), **money},
            occurred_at=occurred_at,
        ),
    ]


def _payload(invoice: Invoice, event_id: str, kind: str, occurred_at: datetime) -> dict[str, Any]:
    return {
        "schemaVersion": SCHEMA_VERSION,
        "eventId": event_id,
        "type": kind,
        "paymentId": invoice.payment_id,
        "invoiceId": invoice.invoice_id,
        "invoiceNumber": invoice.number,
        "occurredAt": occurred_at.isoformat(),
    }

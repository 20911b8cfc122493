"""What an invoice's PDF shows, and the port that draws it (``bridges/documents/invoice_pdf.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from payments.domain.invoice.model import Invoice


@dataclass(frozen=True, kw_only=True)
class Issuer:
    """Who issues the invoices, and where customers ask about them (from settings)."""

    name: str
    address: str
    #: The issuer's tax registration (GSTIN in India); printed only when set.
    tax_id: str | None = None
    support_email: str
    support_phone: str


@dataclass(frozen=True, kw_only=True)
class InvoiceDetails:
    """Everything the PDF prints besides the invoice itself; never the customer's email or phone."""

    issuer: Issuer
    #: The customer's name as they gave it at checkout, if they gave one.
    customer_name: str | None
    #: Our user id: an invoice without a name still says whose account paid.
    customer_account: str
    #: The line item.
    description: str
    payment_id: str
    order_id: str
    payment_method: str | None
    #: The gateway's id of the successful attempt (Cashfree's cf_payment_id): the transaction id.
    gateway_payment_id: str | None
    #: When the gateway captured the money, if known.
    paid_at: datetime | None


class InvoiceRenderer(Protocol):
    def render(self, invoice: Invoice, details: InvoiceDetails) -> bytes:
        """The invoice as a PDF; the same input always gives the same bytes.

        ``invoice.sha256`` is not read (it is the hash of what this returns): the service renders a
        draft with it empty, then records the hash.
        """
        ...

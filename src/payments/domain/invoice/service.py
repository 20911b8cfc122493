"""Issuing invoices: one per successful payment, numbered without gaps, in the caller's transaction.

``issue_invoice`` takes its locks in one order, the payment's row, then the year's number counter,
then the audit chain, as the payment and refund services do (row first, audit last), so issuers
never deadlock each other or them. The row lock makes a second issue of the same payment wait and then
find the first one's invoice; the counter lock makes numbers follow commit order with no gaps, because
a rollback gives the number back. The counter is held while the PDF is drawn: issuing is serialised
per year, which is the price of gap-free numbers (a few milliseconds per invoice).

Which payments get one: every payment that ever succeeded. The states a payment reaches only through a
success (``INVOICEABLE``) all qualify, so a stale ``payment.success`` that arrives after a settlement
or a refund still yields the invoice; a payment that never succeeded yields none. Refunds do not
cancel invoices: that would need credit notes, which are out of scope (the invoice stays as issued).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from payments.domain.gateway import AttemptStatus, GatewayAttempt
from payments.domain.invoice.document import InvoiceDetails, InvoiceRenderer, Issuer
from payments.domain.invoice.events import invoice_events
from payments.domain.invoice.model import Invoice, invoice_id_for, invoice_number, invoice_year
from payments.domain.payment.commands import Actor
from payments.domain.payment.model import Payment
from payments.domain.payment.service import SYSTEM
from payments.domain.payment.states import PaymentState
from payments.domain.unit_of_work import UnitOfWork

#: States a payment reaches only by succeeding first (the transition table has no other way in).
INVOICEABLE: Final = frozenset(
    {
        PaymentState.SUCCESS,
        PaymentState.SETTLED,
        PaymentState.PARTIALLY_REFUNDED,
        PaymentState.REFUNDED,
    }
)
#: The line item of a payment created without a description.
DEFAULT_DESCRIPTION: Final = "CommDesk payment"


async def issue_invoice(
    uow: UnitOfWork,
    payment_id: str,
    *,
    renderer: InvoiceRenderer,
    prefix: str,
    issuer: Issuer,
    now: datetime,
    actor: Actor = SYSTEM,
) -> Invoice | None:
    """The payment's invoice: the one it has, or a new one; None if the payment never succeeded.

    A new invoice takes the next number of its year, is drawn by ``renderer``, stored, audited, and
    asks (through the outbox) for the customer's success email and the billing copy. All of it commits
    or rolls back with ``uow``. ``NotFound`` if there is no such payment.
    """
    payment = await uow.payments.get(payment_id, for_update=True)
    existing = await uow.invoices.for_payment(payment_id)
    if existing is not None:
        return existing
    if payment.status not in INVOICEABLE:
        return None
    # Read before taking the number: the counter's lock is held to commit, and serialises issuers.
    details = invoice_details(payment, issuer, await uow.payments.attempts(payment_id))
    year = invoice_year(now)
    sequence = await uow.invoices.next_sequence(year)
    draft = Invoice(
        invoice_id=invoice_id_for(payment_id),
        number=invoice_number(prefix, year, sequence),
        year=year,
        sequence=sequence,
        payment_id=payment_id,
        user_id=payment.user_id,
        amount=payment.amount,
        issued_at=now,
        sha256="",
    )
    pdf = renderer.render(draft, details)
    invoice = replace(draft, sha256=hashlib.sha256(pdf).hexdigest())
    await uow.invoices.add(invoice, pdf)
    await uow.outbox.add_all(invoice_events(invoice, occurred_at=now))
    await uow.audit.append(
        actor.audit(
            "invoice.issued",
            resource_type="invoice",
            resource_id=invoice.invoice_id,
            before=None,
            after=snapshot(invoice),
            now=now,
        )
    )
    return invoice


def invoice_details(payment: Payment, issuer: Issuer, attempts: Sequence[GatewayAttempt]) -> InvoiceDetails:
    """What the PDF prints about ``payment``: its successful attempt gives the method and paid time."""
    paid = _successful_attempt(payment, attempts)
    return InvoiceDetails(
        issuer=issuer,
        customer_name=payment.customer.name,
        customer_account=payment.user_id,
        description=payment.description or DEFAULT_DESCRIPTION,
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        payment_method=payment.payment_method or (paid.method if paid else None),
        gateway_payment_id=payment.gateway_payment_id or (paid.attempt_id if paid else None),
        paid_at=paid.completed_at if paid else None,
    )


def snapshot(invoice: Invoice) -> Mapping[str, Any]:
    """The audit log's view of an invoice: its number and money, never personal data."""
    return {
        "number": invoice.number,
        "paymentId": invoice.payment_id,
        "amount": str(invoice.amount.amount),
        "currency": invoice.amount.currency,
        "sha256": invoice.sha256,
    }


def _successful_attempt(payment: Payment, attempts: Sequence[GatewayAttempt]) -> GatewayAttempt | None:
    succeeded = [a for a in attempts if a.status is AttemptStatus.SUCCESS]
    # The attempt that decided the payment, if the payment names it; an order has at most one success.
    decided = [a for a in succeeded if a.attempt_id == payment.gateway_payment_id]
    chosen = decided or succeeded
    return chosen[0] if chosen else None

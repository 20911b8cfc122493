"""Issuing invoices over the in-memory store: numbered once per payment, with the emails they ask for."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.domain.errors import NotFound
from payments.domain.gateway import AttemptStatus
from payments.domain.invoice.document import InvoiceDetails, Issuer
from payments.domain.invoice.model import Invoice, invoice_id_for
from payments.domain.invoice.service import invoice_details, issue_invoice
from payments.domain.payment.commands import Actor
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState
from tests.contracts_payments import attempt, new_payment
from tests.fakes.storage import InMemoryStore

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ISSUER = Issuer(
    name="CommDesk Technologies Pvt. Ltd.",
    address="Bengaluru, Karnataka, India",
    tax_id="29ABCDE1234F1Z5",
    support_email="support@commdesk.example",
    support_phone="+91 80 4000 0000",
)


class Boom(Exception):
    pass


@dataclass
class RecordingRenderer:
    """A renderer whose bytes name the invoice; remembers what it was asked to draw."""

    drawn: list[tuple[Invoice, InvoiceDetails]] = field(default_factory=list)

    def render(self, invoice: Invoice, details: InvoiceDetails) -> bytes:
        self.drawn.append((invoice, details))
        return f"%PDF-1.3 {invoice.number} {invoice.amount} {details.customer_name}".encode()


async def paid(store: InMemoryStore, **changes) -> Payment:
    payment = new_payment(**{"status": PaymentState.SUCCESS, **changes})
    async with store.unit_of_work() as uow:
        await uow.payments.add(payment)
    return payment


async def issue(
    store: InMemoryStore, payment_id: str, renderer=None, *, now: datetime = NOW
) -> Invoice | None:
    async with store.unit_of_work() as uow:
        return await issue_invoice(
            uow,
            payment_id,
            renderer=renderer or RecordingRenderer(),
            prefix="INV",
            issuer=ISSUER,
            now=now,
        )


def outbox(store: InMemoryStore) -> list:
    return list(store.outbox_events.values())


async def test_a_successful_payment_gets_the_first_number_of_the_year_and_its_pdf_stored():
    store = InMemoryStore()
    payment = await paid(store)
    renderer = RecordingRenderer()

    invoice = await issue(store, payment.payment_id, renderer)

    assert invoice is not None
    assert (invoice.number, invoice.year, invoice.sequence) == ("INV-2026-000001", 2026, 1)
    assert invoice.invoice_id == invoice_id_for(payment.payment_id)
    assert (invoice.payment_id, invoice.user_id, invoice.amount) == (
        payment.payment_id,
        payment.user_id,
        payment.amount,
    )
    assert invoice.issued_at == NOW
    [(drawn, _)] = renderer.drawn
    assert drawn == replace(invoice, sha256="")
    async with store.unit_of_work() as uow:
        pdf = await uow.invoices.document(invoice.invoice_id)
        assert await uow.invoices.for_payment(payment.payment_id) == invoice
    assert pdf == b"%PDF-1.3 INV-2026-000001 499.00 INR Asha Rao"
    assert invoice.sha256 == hashlib.sha256(pdf).hexdigest()


async def test_the_invoice_asks_for_the_success_email_and_the_billing_copy_without_personal_data():
    store = InMemoryStore()
    payment = await paid(store)

    invoice = await issue(store, payment.payment_id)

    assert invoice is not None
    success, generated = outbox(store)
    ids = {
        "schemaVersion": 1,
        "paymentId": payment.payment_id,
        "invoiceId": invoice.invoice_id,
        "invoiceNumber": "INV-2026-000001",
        "occurredAt": NOW.isoformat(),
    }
    assert (success.event_id, success.routing_key, success.exchange) == (
        f"evt_{invoice.invoice_id}.success",
        "email.payment.success",
        "email.exchange",
    )
    assert success.payload == {**ids, "eventId": success.event_id, "type": "email.payment.success"}
    assert (generated.event_id, generated.routing_key) == (
        f"evt_{invoice.invoice_id}.generated",
        "email.invoice.generated",
    )
    assert generated.payload == {
        **ids,
        "eventId": generated.event_id,
        "type": "email.invoice.generated",
        "amount": "499.00",
        "currency": "INR",
    }


async def test_issuing_again_returns_the_same_invoice_and_takes_no_number_and_sends_nothing_new():
    store = InMemoryStore()
    payment = await paid(store)
    first = await issue(store, payment.payment_id)
    renderer = RecordingRenderer()

    again = await issue(store, payment.payment_id, renderer)

    assert again == first
    assert renderer.drawn == []
    assert len(outbox(store)) == 2
    assert store.invoice_tables.sequences == {2026: 1}


async def test_numbers_increase_by_one_per_payment_within_a_year_and_start_again_in_the_next():
    store = InMemoryStore()
    payments = [await paid(store) for _ in range(3)]
    next_year = datetime(2027, 1, 2, 10, 0, tzinfo=UTC)

    numbers = [(await issue(store, p.payment_id)).number for p in payments[:2]]
    later = await issue(store, payments[2].payment_id, now=next_year)

    assert numbers == ["INV-2026-000001", "INV-2026-000002"]
    assert later is not None
    assert later.number == "INV-2027-000001"


async def test_the_year_is_the_issuers_so_new_years_eve_in_utc_can_already_be_next_year():
    store = InMemoryStore()
    payment = await paid(store)

    # 20:00 UTC on 31 December is 01:30 on 1 January in India.
    invoice = await issue(store, payment.payment_id, now=datetime(2026, 12, 31, 20, 0, tzinfo=UTC))

    assert invoice is not None
    assert (invoice.year, invoice.number) == (2027, "INV-2027-000001")


async def test_a_payment_that_never_succeeded_gets_no_invoice_and_takes_no_number():
    store = InMemoryStore()
    unpaid = [await paid(store, status=state) for state in (PaymentState.PENDING, PaymentState.FAILED)]

    results = [await issue(store, p.payment_id) for p in unpaid]

    assert results == [None, None]
    assert store.invoice_tables.sequences == {}
    assert outbox(store) == []


@pytest.mark.parametrize(
    "state", [PaymentState.SETTLED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED]
)
async def test_a_payment_settled_or_refunded_since_its_success_still_gets_its_invoice(state):
    store = InMemoryStore()
    payment = await paid(store, status=state)

    invoice = await issue(store, payment.payment_id)

    assert invoice is not None
    assert invoice.amount == payment.amount  # the amount paid; refunds do not change an invoice


async def test_an_unknown_payment_is_not_found():
    with pytest.raises(NotFound):
        await issue(InMemoryStore(), "pay_unknown")


async def test_a_rolled_back_issue_leaves_no_invoice_no_email_and_no_gap():
    store = InMemoryStore()
    lost, kept = await paid(store), await paid(store)

    async def issue_then_fail() -> None:
        async with store.unit_of_work() as uow:
            await issue_invoice(
                uow, lost.payment_id, renderer=RecordingRenderer(), prefix="INV", issuer=ISSUER, now=NOW
            )
            raise Boom

    with pytest.raises(Boom):
        await issue_then_fail()
    invoice = await issue(store, kept.payment_id)

    assert invoice is not None
    assert invoice.number == "INV-2026-000001"
    assert store.invoice_tables.invoices.keys() == {invoice.invoice_id}
    assert {e.payload["invoiceId"] for e in outbox(store)} == {invoice.invoice_id}


async def test_an_issue_waiting_on_an_open_one_for_the_same_payment_gets_that_invoice():
    store = InMemoryStore()
    payment = await paid(store)
    started = asyncio.Event()

    async def second() -> Invoice | None:
        started.set()
        return await issue(store, payment.payment_id)

    async with store.unit_of_work() as uow:
        first = await issue_invoice(
            uow, payment.payment_id, renderer=RecordingRenderer(), prefix="INV", issuer=ISSUER, now=NOW
        )
        waiting = asyncio.create_task(second())
        await started.wait()  # the second issue is now waiting for the payment's row
    again = await waiting

    assert again == first
    assert len(store.invoice_tables.invoices) == 1
    assert store.invoice_tables.sequences == {2026: 1}
    assert len(outbox(store)) == 2


async def test_the_pdf_shows_the_successful_attempt_and_the_customer_but_no_contact_details():
    store = InMemoryStore()
    payment = await paid(store, gateway_payment_id=None, payment_method=None)
    success = attempt(payment, AttemptStatus.SUCCESS, attempt_id="5114910948")
    async with store.unit_of_work() as uow:
        await uow.payments.record_attempt(payment.payment_id, attempt(payment, AttemptStatus.FAILED), now=NOW)
        await uow.payments.record_attempt(payment.payment_id, success, now=NOW)
    renderer = RecordingRenderer()

    await issue(store, payment.payment_id, renderer)

    [(_, details)] = renderer.drawn
    assert details == InvoiceDetails(
        issuer=ISSUER,
        customer_name="Asha Rao",
        customer_account=payment.user_id,
        description="CommDesk Pro",
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        payment_method="upi",
        gateway_payment_id="5114910948",
        paid_at=NOW,
    )


async def test_a_payment_without_a_description_or_a_known_attempt_still_has_a_line_to_print():
    store = InMemoryStore()
    payment = await paid(store, description=None, gateway_payment_id="cf_77", payment_method="card")
    renderer = RecordingRenderer()

    await issue(store, payment.payment_id, renderer)

    [(_, details)] = renderer.drawn
    assert (details.description, details.gateway_payment_id, details.payment_method, details.paid_at) == (
        "CommDesk payment",
        "cf_77",
        "card",
        None,
    )


async def test_issuing_is_audited_with_the_actor_and_the_invoice_but_no_personal_data():
    store = InMemoryStore()
    payment = await paid(store)
    actor = Actor(actor_id="invoices-agent", trace_id="a" * 32, request_id="req-1")

    async with store.unit_of_work() as uow:
        invoice = await issue_invoice(
            uow,
            payment.payment_id,
            renderer=RecordingRenderer(),
            prefix="INV",
            issuer=ISSUER,
            now=NOW,
            actor=actor,
        )

    [row] = store.audit_rows
    entry = row.entry
    assert (entry.action, entry.resource_type, entry.resource_id, entry.actor_id, entry.trace_id) == (
        "invoice.issued",
        "invoice",
        invoice.invoice_id,
        "invoices-agent",
        "a" * 32,
    )
    assert entry.after_state == {
        "number": "INV-2026-000001",
        "paymentId": payment.payment_id,
        "amount": "499.00",
        "currency": "INR",
        "sha256": invoice.sha256,
    }


async def test_with_the_real_renderer_the_stored_hash_is_that_of_drawing_the_invoice_again():
    store = InMemoryStore()
    payment = await paid(store)
    renderer = InvoicePdf()

    invoice = await issue(store, payment.payment_id, renderer)

    assert invoice is not None
    async with store.unit_of_work() as uow:
        details = invoice_details(payment, ISSUER, await uow.payments.attempts(payment.payment_id))
        stored = await uow.invoices.document(invoice.invoice_id)
    assert stored.startswith(b"%PDF-")
    assert hashlib.sha256(renderer.render(invoice, details)).hexdigest() == invoice.sha256

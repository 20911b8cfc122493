"""The invoices agent over a fake context: one invoice per successful payment, however often it hears."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from payments.agents.invoices import CONSUMER, PaymentSucceeded, invoices
from payments.domain.invoice.document import InvoiceDetails
from payments.domain.invoice.model import Invoice
from payments.domain.payment.events import PaymentFailed
from payments.domain.payment.events import PaymentSucceeded as PaymentSucceededEvent
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState
from payments.pipeline import topology
from payments.pipeline.settings import load_settings
from tests.contracts_payments import new_payment
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, RecordingPublisher
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore

[AGENT] = invoices.agents
RETRY_QUEUE = topology.INVOICE_PAYMENTS.retry_queue(topology.RETRY_TIERS[0])


@dataclass
class RecordingRenderer:
    drawn: list[tuple[Invoice, InvoiceDetails]] = field(default_factory=list)
    broken: bool = False

    def render(self, invoice: Invoice, details: InvoiceDetails) -> bytes:
        if self.broken:
            raise RuntimeError("renderer broke")
        self.drawn.append((invoice, details))
        return f"%PDF-1.3 {invoice.number}".encode()


class World:
    def __init__(self, **settings: str) -> None:
        self.store = InMemoryStore()
        self.renderer = RecordingRenderer()
        self.context = fake_context(
            store=self.store, settings=load_settings(settings), invoice_renderer=self.renderer
        )

    async def payment(self, status: PaymentState = PaymentState.SUCCESS, **changes: Any) -> Payment:
        payment = new_payment(status=status, **changes)
        async with self.store.unit_of_work() as uow:
            await uow.payments.add(payment)
        return payment

    async def deliver(self, *messages: FakeMessage) -> RecordingPublisher:
        return await run_until_settled(AGENT, self.context, *messages)

    def invoices(self) -> list[Invoice]:
        return [invoice for invoice, _ in self.store.invoice_tables.invoices.values()]

    def emails(self) -> list[str]:
        return [e.routing_key for e in self.store.outbox_events.values()]


def succeeded(payment: Payment, *, version: int = 3) -> FakeMessage:
    """The ``payment.success`` message the outbox relay publishes for ``payment``."""
    event = PaymentSucceededEvent(
        event_id=f"evt_{payment.payment_id}_v{version}", payment=payment, occurred_at=NOW
    ).outgoing()[0]
    return FakeMessage(
        body=json.dumps(dict(event.payload)).encode(),
        message_id=event.event_id,
        routing_key=event.routing_key,
    )


def again(original: FakeMessage) -> FakeMessage:
    return replace(original, redelivered=True, settled=None)


async def test_a_successful_payment_is_invoiced_and_its_emails_are_asked_for():
    world = World()
    payment = await world.payment()
    message = succeeded(payment)

    publisher = await world.deliver(message)

    assert message.settled == "acked"
    assert publisher.published == []
    [invoice] = world.invoices()
    assert (invoice.payment_id, invoice.number) == (payment.payment_id, "INV-2026-000001")
    assert world.emails() == ["email.payment.success", "email.invoice.generated"]
    assert (CONSUMER, message.message_id) in world.store.inbox_claims


async def test_a_redelivered_success_issues_nothing_more():
    world = World()
    payment = await world.payment()
    first = succeeded(payment)
    await world.deliver(first)

    duplicate = again(first)
    await world.deliver(duplicate)

    assert duplicate.settled == "acked"
    assert len(world.invoices()) == 1
    assert len(world.renderer.drawn) == 1
    assert len(world.emails()) == 2


async def test_another_success_event_for_an_invoiced_payment_finds_its_invoice_and_emails_nobody():
    world = World()
    payment = await world.payment()
    await world.deliver(succeeded(payment, version=3))

    other = succeeded(payment, version=4)
    await world.deliver(other)

    assert other.settled == "acked"
    assert len(world.invoices()) == 1
    assert len(world.emails()) == 2


async def test_a_success_heard_after_a_refund_still_gets_the_invoice_of_what_was_paid():
    world = World()
    payment = await world.payment(status=PaymentState.REFUNDED)

    await world.deliver(succeeded(payment))

    [invoice] = world.invoices()
    assert invoice.amount == payment.amount


async def test_a_payment_that_never_succeeded_gets_no_invoice_and_the_event_is_settled(caplog):
    world = World()
    payment = await world.payment(status=PaymentState.FAILED)
    message = succeeded(payment)

    with caplog.at_level("WARNING", logger="payments.agents.invoices"):
        await world.deliver(message)

    assert message.settled == "acked"
    assert world.invoices() == []
    assert world.emails() == []
    assert f"payment {payment.payment_id} never succeeded" in caplog.text


async def test_a_success_of_an_unknown_payment_is_dead_lettered():
    world = World()
    stranger = new_payment(status=PaymentState.SUCCESS)  # never stored

    publisher = await world.deliver(succeeded(stranger))

    assert [p.routing_key for p in publisher.published] == [topology.INVOICE_PAYMENTS.dead_letter_queue]
    assert world.store.inbox_claims == set()


async def test_a_message_that_is_not_a_payment_success_is_dead_lettered():
    world = World()
    payment = await world.payment()
    event = PaymentFailed(event_id="evt_x_v2", payment=payment, occurred_at=NOW).outgoing()[0]
    failed = FakeMessage(body=json.dumps(dict(event.payload)).encode(), message_id=event.event_id)

    publisher = await world.deliver(failed)

    assert [p.routing_key for p in publisher.published] == [topology.INVOICE_PAYMENTS.dead_letter_queue]
    assert world.invoices() == []


async def test_a_failure_while_issuing_retries_later_and_leaves_nothing_behind():
    world = World()
    world.renderer.broken = True
    payment = await world.payment()
    message = succeeded(payment)

    publisher = await world.deliver(message)

    assert [p.routing_key for p in publisher.published] == [RETRY_QUEUE]
    assert world.invoices() == []
    assert world.store.invoice_tables.sequences == {}
    assert world.store.inbox_claims == set()  # the retry will claim it again


async def test_the_issuer_block_and_the_number_prefix_come_from_settings():
    world = World(
        INVOICE_PREFIX="CD",
        INVOICE_ISSUER="Acme Software LLP",
        INVOICE_ISSUER_ADDRESS="Pune, India",
        INVOICE_ISSUER_TAX_ID="27AAAAA0000A1Z5",
        SUPPORT_EMAIL="help@acme.example",
        SUPPORT_PHONE="+91 20 1234 5678",
    )
    payment = await world.payment()

    await world.deliver(succeeded(payment))

    [(invoice, details)] = world.renderer.drawn
    assert invoice.number == "CD-2026-000001"
    issuer = details.issuer
    assert (issuer.name, issuer.address, issuer.tax_id) == (
        "Acme Software LLP",
        "Pune, India",
        "27AAAAA0000A1Z5",
    )
    assert (issuer.support_email, issuer.support_phone) == ("help@acme.example", "+91 20 1234 5678")


def test_the_agent_consumes_its_own_queue_bound_to_payment_successes_only():
    queue = topology.INVOICE_PAYMENTS

    assert AGENT.queue is queue
    assert queue in topology.WORK_QUEUES
    assert [(b.exchange, b.routing_key) for b in queue.bindings] == [
        (topology.Exchange.PAYMENT, "payment.success")
    ]
    assert AGENT.replayable is False
    assert AGENT.help.startswith("Issue the invoice of each successful payment")


def test_the_value_type_reads_what_a_payment_success_carries_and_ignores_the_rest():
    body = json.loads(succeeded(new_payment(payment_id="pay_1")).body)

    value = PaymentSucceeded.model_validate(body | {"somethingNew": 1})

    assert (value.type, value.payment_id) == ("payment.success", "pay_1")

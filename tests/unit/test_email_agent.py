"""The email agent over behavioural fakes: storage, a recording mail server, the real templates."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from payments.agents.email import KIND_HEADER, emails, sender_domain
from payments.bridges.templates.renderer import JinjaEmailRenderer
from payments.domain.alerts.model import Alert, Severity
from payments.domain.errors import DependencyUnavailable
from payments.domain.events import OutgoingEvent
from payments.domain.invoice.events import invoice_events
from payments.domain.invoice.model import Invoice, invoice_id_for
from payments.domain.notification.model import EmailKind, EmailRecord, EmailStatus
from payments.domain.notification.sending import EmailRefused
from payments.domain.payment.events import PaymentFailed
from payments.domain.payment.model import CustomerDetails, Payment
from payments.domain.payment.states import PaymentState
from payments.domain.refund.states import RefundState
from payments.pipeline import topology
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import load_settings
from payments.pipeline.stream import FAILURES_HEADER
from tests.contracts_payments import new_payment
from tests.contracts_refunds import new_refund
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, Published, RecordingPublisher
from tests.fakes.context import NOW, fake_context
from tests.fakes.emails import RecordingMailer
from tests.fakes.storage import InMemoryStore

PDF = b"%PDF-1.4 a stand-in invoice"
CUSTOMER = "asha@example.com"
RETRY_QUEUE = topology.EMAILS.retry_queue(topology.RETRY_TIERS[0])


def message(event: OutgoingEvent, **changes: Any) -> FakeMessage:
    """The message the outbox relay publishes for ``event``."""
    original = FakeMessage(
        body=json.dumps(dict(event.payload), default=str).encode(),
        message_id=event.event_id,
        routing_key=event.routing_key,
        timestamp=event.occurred_at,
        message_type=event.routing_key,
    )
    return replace(original, **changes)


def again(original: FakeMessage) -> FakeMessage:
    return replace(original, redelivered=True, settled=None)


def back_from(published: Published) -> FakeMessage:
    """A message the runtime moved to a tier, as the tier hands it back to the work queue."""
    return FakeMessage(
        body=published.body,
        message_id=published.message_id,
        routing_key=topology.EMAILS.name,  # what a retry tier's dead-lettering leaves as routing key
        headers=published.headers,
        message_type=published.message_type,
    )


class World:
    def __init__(self, **settings: str) -> None:
        self.store = InMemoryStore()
        self.mailer = RecordingMailer()
        self.context: AgentContext = fake_context(
            store=self.store,
            settings=load_settings(settings),
            mailer=self.mailer,
            email_renderer=JinjaEmailRenderer(),
        )

    async def run(self, *messages: FakeMessage) -> RecordingPublisher:
        [spec] = emails.agents
        return await run_until_settled(spec, self.context, *messages)

    async def a_payment(self, **changes: Any) -> Payment:
        payment = replace(new_payment(), **changes)
        async with self.store.unit_of_work() as uow:
            await uow.payments.add(payment)
        return payment

    async def an_invoice(self, payment: Payment) -> Invoice:
        async with self.store.unit_of_work() as uow:
            sequence = await uow.invoices.next_sequence(2026)
            invoice = Invoice(
                invoice_id=invoice_id_for(payment.payment_id),
                number=f"INV-2026-{sequence:06d}",
                year=2026,
                sequence=sequence,
                payment_id=payment.payment_id,
                user_id=payment.user_id,
                amount=payment.amount,
                issued_at=NOW,
                sha256=hashlib.sha256(PDF).hexdigest(),
            )
            await uow.invoices.add(invoice, PDF)
        return invoice

    async def emails_of(self, event_id: str) -> list[EmailRecord]:
        async with self.store.unit_of_work() as uow:
            return list(await uow.emails.for_event(event_id))

    def failures(self, kind: EmailKind, reason: str) -> float:
        metric = self.context.metrics.email_delivery_failures.labels(kind.value, reason)
        return metric._value.get()


def failed_payment_message(payment: Payment, n: int = 1) -> FakeMessage:
    failed = replace(payment, status=PaymentState.FAILED, failure_reason="auth_declined")
    events = PaymentFailed(
        event_id=f"evt_{payment.payment_id}_v{n}", payment=failed, occurred_at=NOW
    ).outgoing()
    [email] = [event for event in events if event.routing_key == "email.payment.failed"]
    return message(email)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_failed_payment_mails_its_customer_once_and_records_it_sent(world):
    payment = await world.a_payment(status=PaymentState.FAILED, payment_method="upi")
    incoming = failed_payment_message(payment)

    await world.run(incoming)

    [sent] = world.mailer.sent
    assert sent.recipients == (CUSTOMER,)
    assert sent.subject == "Your payment of INR 499.00 did not go through"
    assert "Your bank declined the payment." in sent.text
    assert (KIND_HEADER, "payment_failed") in sent.headers
    [record] = await world.emails_of(incoming.message_id)
    assert sent.message_id == f"<{record.email_id}@commdesk.example>"
    assert (record.status, record.attempts) == (EmailStatus.SENT, 1)
    assert record.provider_message_id == "OK queued as fake-1"
    assert (record.kind, record.template) == (EmailKind.PAYMENT_FAILED, "email/payment_failed")
    assert incoming.settled == "acked"


async def test_a_redelivered_message_sends_nothing_twice(world):
    payment = await world.a_payment(status=PaymentState.FAILED)
    incoming = failed_payment_message(payment)
    await world.run(incoming)

    redelivered = again(incoming)
    await world.run(redelivered)

    assert len(world.mailer.sent) == 1
    assert world.mailer.tries == 1
    assert redelivered.settled == "acked"
    [record] = await world.emails_of(incoming.message_id)
    assert record.attempts == 1


async def test_a_transient_failure_counts_an_attempt_and_the_retry_delivers_it(world):
    payment = await world.a_payment(status=PaymentState.FAILED)
    incoming = failed_payment_message(payment)
    world.mailer.fail_next(DependencyUnavailable("the mail server at 127.0.0.1:25 answered 451 try later"))

    publisher = await world.run(incoming)

    [moved] = publisher.published
    assert moved.routing_key == RETRY_QUEUE
    assert world.mailer.sent == []
    [record] = await world.emails_of(incoming.message_id)
    assert (record.status, record.attempts) == (EmailStatus.PENDING, 1)
    assert (
        record.last_error == "DependencyUnavailable: the mail server at 127.0.0.1:25 answered 451 try later"
    )
    assert world.failures(EmailKind.PAYMENT_FAILED, "transient") == 1

    await world.run(back_from(moved))

    assert len(world.mailer.sent) == 1
    [record] = await world.emails_of(incoming.message_id)
    assert (record.status, record.attempts) == (EmailStatus.SENT, 2)


async def test_a_refused_email_is_marked_failed_and_dead_lettered_at_once(world):
    payment = await world.a_payment(status=PaymentState.FAILED)
    incoming = failed_payment_message(payment)
    world.mailer.fail_next(EmailRefused("the mail server refused every recipient (550)"))

    publisher = await world.run(incoming)

    [moved] = publisher.published
    assert moved.routing_key == topology.EMAILS.dead_letter_queue
    [record] = await world.emails_of(incoming.message_id)
    assert (record.status, record.attempts) == (EmailStatus.FAILED, 1)
    assert world.failures(EmailKind.PAYMENT_FAILED, "refused") == 1
    assert world.failures(EmailKind.PAYMENT_FAILED, "transient") == 0


async def test_the_failure_after_the_last_retry_tier_marks_the_email_failed(world):
    payment = await world.a_payment(status=PaymentState.FAILED)
    last_try = replace(failed_payment_message(payment), headers={FAILURES_HEADER: len(topology.RETRY_TIERS)})
    world.mailer.fail_next(DependencyUnavailable("the mail server is unavailable"))

    publisher = await world.run(last_try)

    [moved] = publisher.published
    assert moved.routing_key == topology.EMAILS.dead_letter_queue
    [record] = await world.emails_of(last_try.message_id)
    assert record.status is EmailStatus.FAILED
    assert world.failures(EmailKind.PAYMENT_FAILED, "transient") == 1


async def test_the_success_email_and_the_billing_copy_carry_the_invoice_pdf(world):
    payment = await world.a_payment(
        status=PaymentState.SUCCESS, gateway_payment_id="cf_77", payment_method="card"
    )
    invoice = await world.an_invoice(payment)
    success, generated = (message(event) for event in invoice_events(invoice, occurred_at=NOW))

    await world.run(success, generated)

    by_kind = {dict(sent.headers)[KIND_HEADER]: sent for sent in world.mailer.sent}
    receipt, copy = by_kind["payment_success"], by_kind["invoice_generated"]
    assert receipt.recipients == (CUSTOMER,)
    assert copy.recipients == ("billing@commdesk.example",)
    for sent in (receipt, copy):
        [attachment] = sent.attachments
        assert (attachment.filename, attachment.content_type) == (f"{invoice.number}.pdf", "application/pdf")
        assert attachment.content == PDF
    assert "cf_77" in receipt.text
    assert invoice.number in receipt.subject
    assert "26 Nov 2026, 15:30 IST" in receipt.text  # no attempt recorded: the message's time


async def test_a_success_email_without_its_invoice_is_retried_and_not_sent(world):
    payment = await world.a_payment(status=PaymentState.SUCCESS)
    invoice = await world.an_invoice(payment)
    [success, _] = invoice_events(invoice, occurred_at=NOW)
    other = await world.a_payment(status=PaymentState.SUCCESS)
    orphan = message(success, body=success_body_for(success, other.payment_id))

    publisher = await world.run(orphan)

    [moved] = publisher.published
    assert moved.routing_key == RETRY_QUEUE
    assert world.mailer.sent == []


def success_body_for(event: OutgoingEvent, payment_id: str) -> bytes:
    return json.dumps({**event.payload, "paymentId": payment_id}).encode()


async def test_a_refund_email_tells_the_customer_the_status_the_message_announced(world):
    payment = await world.a_payment(status=PaymentState.SUCCESS)
    refund = new_refund(payment, status=RefundState.SUCCESS)
    async with world.store.unit_of_work() as uow:
        await uow.refunds.add(refund)
    payload = {
        "schemaVersion": 1,
        "refundId": refund.refund_id,
        "paymentId": payment.payment_id,
        "amount": "100.00",
        "currency": "INR",
        "status": "PROCESSING",
        "speed": "INSTANT",
        "statusDescription": None,
        "occurredAt": NOW.isoformat(),
    }
    event = OutgoingEvent(
        event_id=f"refund_{refund.refund_id}_v2",
        routing_key="email.payment.refund",
        payload=payload,
        occurred_at=NOW,
    )

    await world.run(message(event))

    [sent] = world.mailer.sent
    assert sent.recipients == (CUSTOMER,)
    assert sent.subject == "Refund of INR 100.00: On its way"
    assert "within minutes" in sent.text


async def test_an_admin_alert_goes_to_every_admin_and_a_retry_skips_those_already_mailed():
    world = World(ADMIN_EMAILS="ops@example.com,cto@example.com", PUBLIC_BASE_URL="https://pay.example.com")
    alert = Alert(
        kind="payment_failure_rate",
        subject="method:upi",
        severity=Severity.CRITICAL,
        title="Payment failures at 80% over 5 min",
        details={"failed": 8, "succeeded": 2},
        since=NOW - timedelta(minutes=5),
        raised_at=NOW,
        source="alerts",
    )
    incoming = message(
        OutgoingEvent(
            event_id=f"evt_{alert.alert_id}",
            routing_key="email.admin.alert",
            payload=alert.message(),
            occurred_at=NOW,
        )
    )
    world.mailer.fail_next(DependencyUnavailable("451"))  # the first admin's first try

    [moved] = (await world.run(incoming)).published
    await world.run(back_from(moved))

    assert sorted(sent.recipients[0] for sent in world.mailer.sent) == ["cto@example.com", "ops@example.com"]
    assert world.mailer.tries == 3
    records = await world.emails_of(incoming.message_id)
    assert {r.status for r in records} == {EmailStatus.SENT}
    assert sorted(r.attempts for r in records) == [1, 2]
    [first, *_] = world.mailer.sent
    assert first.subject == "[CRITICAL] Payment failures at 80% over 5 min"
    assert "https://pay.example.com/admin" in first.text


async def test_a_customer_without_an_email_gets_none_and_leaves_no_record(world):
    payment = await world.a_payment(
        status=PaymentState.FAILED, customer=CustomerDetails(name=None, email=None, phone="9876543210")
    )
    incoming = failed_payment_message(payment)

    await world.run(incoming)

    assert world.mailer.tries == 0
    assert await world.emails_of(incoming.message_id) == []
    assert incoming.settled == "acked"


async def test_no_failure_email_goes_out_for_a_payment_paid_since(world):
    payment = await world.a_payment(status=PaymentState.SUCCESS)

    await world.run(failed_payment_message(payment))

    assert world.mailer.tries == 0


async def test_a_message_that_is_no_email_goes_to_the_dead_letter_queue(world):
    incoming = FakeMessage(body=b'{"hello": "world"}', message_id="m1", routing_key="email.unknown")

    [moved] = (await world.run(incoming)).published

    assert moved.routing_key == topology.EMAILS.dead_letter_queue
    assert world.mailer.tries == 0


async def test_logs_mask_the_recipients_address(world, caplog):
    payment = await world.a_payment(status=PaymentState.FAILED)
    caplog.set_level(logging.INFO, logger="payments.agents.email")

    await world.run(failed_payment_message(payment))

    lines = [record.getMessage() for record in caplog.records if record.name == "payments.agents.email"]
    assert any("a***@example.com" in line for line in lines)
    assert not any(CUSTOMER in line for line in lines)


def test_the_message_id_domain_is_the_senders():
    assert sender_domain("CommDesk Payments <payments@commdesk.example>") == "commdesk.example"
    assert sender_domain("billing@pay.example.in") == "pay.example.in"
    assert sender_domain("no address") == "localhost"


def test_the_agent_consumes_every_email_key_on_its_own_queue_four_at_a_time():
    [spec] = emails.agents

    assert spec.queue is topology.EMAILS
    assert spec.queue.dead_letter_queue == "emails.outgoing.dlq"
    assert spec.concurrency == 4
    assert spec.name == "email.send_emails"

"""Emails end to end: the email agent under the real runtime (RabbitMQ, retry tiers, DLQ), PostgreSQL,
the real templates and ``SmtpSender`` talking to a real SMTP server (``SmtpSink``, aiosmtpd).

Each test runs the agent on a work queue of its own (``it.emails.<random>``, declared with its retry
tiers and DLQ exactly as ``emails.outgoing`` is), so messages other tests left on ``emails.outgoing``
never reach it. Messages are published straight to that queue, so their routing key is the queue's
name, as it is for every message back from a retry tier: the agent must tell the kind by the payload.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from typing import Any

import pytest
from pypdf import PdfReader

from payments.agents.email import KIND_HEADER, emails
from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.bridges.rabbitmq.inspection import queue_depths
from payments.bridges.rabbitmq.topology import declare_topology
from payments.bridges.smtp.sender import SmtpSender
from payments.bridges.smtp.sink import SmtpSink
from payments.bridges.templates.renderer import JinjaEmailRenderer
from payments.domain.alerts.model import Alert, Severity
from payments.domain.events import OutgoingEvent
from payments.domain.gateway import AttemptStatus, RefundSpeed
from payments.domain.invoice.document import Issuer
from payments.domain.invoice.events import invoice_events
from payments.domain.invoice.model import Invoice
from payments.domain.invoice.service import issue_invoice
from payments.domain.money import Money
from payments.domain.notification.model import EmailRecord, EmailStatus
from payments.domain.payment.events import PaymentFailed
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState
from payments.domain.refund.states import RefundState
from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import Settings, load_settings
from payments.pipeline.stream import FAILURES_HEADER
from payments.pipeline.topology import QueueSpec
from tests.contracts_payments import attempt, new_payment
from tests.contracts_refunds import new_refund
from tests.fakes.context import fake_context
from tests.waiting import eventually

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CUSTOMER = "asha@example.com"
ADMIN = "ops@commdesk.example"
BILLING = "billing@commdesk.example"
#: Long enough for four retry tiers at RETRY_DELAY_SCALE=0.001 (about 2.6 s) on a loaded machine.
RETRIES_DEADLINE = 30.0


@pytest.fixture
def settings(migrated_dsn: str, amqp_url: str, redis_url: str) -> Settings:
    return load_settings(
        {
            "APP_ENV": "test",
            "DATABASE_URL": migrated_dsn,
            "RABBITMQ_URL": amqp_url,
            "REDIS_URL": redis_url,
            "RETRY_DELAY_SCALE": "0.001",
            "SHUTDOWN_GRACE_SECONDS": "10",
            "LOG_LEVEL": "WARNING",
            "ADMIN_EMAILS": ADMIN,
            "BILLING_EMAIL": BILLING,
            "PUBLIC_BASE_URL": "https://payments.commdesk.example",
            "PAYMENT_RETRY_URL": "https://app.commdesk.example/pay/{paymentId}",
        }
    )


@pytest.fixture
async def sink(tmp_path) -> AsyncIterator[SmtpSink]:
    async with SmtpSink(tmp_path / "mail") as sink:
        yield sink


@dataclass
class Run:
    """The email agent of one test, on its own queue, sending to ``sink``."""

    resources: bootstrap.Resources
    context: AgentContext
    queue: QueueSpec
    sink: SmtpSink
    stop: asyncio.Event
    task: asyncio.Task[None] | None = None

    @property
    def agent(self) -> str:
        [spec] = emails.agents
        return spec.name

    async def start(self) -> None:
        [spec] = emails.agents
        blueprint = Blueprint("it-email", agents=[replace(spec, queue=self.queue)])
        worker = replace(
            bootstrap.build_worker(self.resources, App((blueprint,))), context=self.context, relay=None
        )
        self.task = asyncio.create_task(worker.run(self.stop))

    async def shutdown(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, timeout=15)

    async def publish(self, event: OutgoingEvent) -> None:
        await self.resources.publisher.publish(
            exchange="",
            routing_key=self.queue.name,
            body=json.dumps(dict(event.payload), default=str).encode(),
            message_id=event.event_id,
            message_type=event.routing_key,
            timestamp=event.occurred_at,
        )

    async def emails_of(self, event_id: str) -> list[EmailRecord]:
        async with self.context.unit_of_work() as uow:
            return list(await uow.emails.for_event(event_id))

    async def settled_email(self, event_id: str) -> EmailRecord:
        """The one email of ``event_id`` once it is SENT or FAILED (the server takes a message before
        the agent records that it did)."""

        async def settled() -> EmailRecord | None:
            records = await self.emails_of(event_id)
            done = [r for r in records if r.status is not EmailStatus.PENDING]
            return done[0] if len(records) == 1 and done else None

        return await eventually(settled, what=f"the email of {event_id} sent or given up")

    async def depth(self, name: str) -> int:
        [depth] = await queue_depths(self.resources.amqp, [name])
        return depth.messages

    def metric(self, name: str, **labels: str) -> float:
        return self.resources.registry.get_sample_value(name, labels) or 0.0

    def finished_ok(self) -> float:
        return self.metric("payments_agent_messages_total", agent=self.agent, outcome="ok")


@pytest.fixture
async def run(settings: Settings, sink: SmtpSink) -> AsyncIterator[Run]:
    async with bootstrap.open_resources(settings, process="test") as resources:
        queue = QueueSpec(f"it.emails.{uuid.uuid4().hex[:8]}")
        channel = await resources.amqp.channel()
        await declare_topology(channel, [queue])
        await channel.close()
        context = fake_context(
            unit_of_work=bootstrap.unit_of_work_factory(resources),
            metrics=resources.metrics,
            settings=settings,
            digest=bootstrap.personal_data_digest(resources.cipher),
            mailer=SmtpSender.from_url(sink.url, timeout=5.0, local_hostname="payments.test"),
            email_renderer=JinjaEmailRenderer(),
        )
        running = Run(resources, context, queue, sink, asyncio.Event())
        await running.start()
        try:
            yield running
        finally:
            await running.shutdown()


# --- what the tests send ------------------------------------------------------------------------------


async def a_payment(run: Run, **changes: Any) -> Payment:
    payment = replace(new_payment(), amount=Money.of("1499.00", "INR"), **changes)
    async with run.context.unit_of_work() as uow:
        await uow.payments.add(payment)
    return payment


async def a_paid_payment_with_its_invoice(run: Run) -> tuple[Payment, Invoice]:
    pending = await a_payment(run, status=PaymentState.PENDING)
    paid_attempt = attempt(pending, AttemptStatus.SUCCESS, attempt_id=f"cf_{uuid.uuid4().hex[:10]}")
    paid = replace(pending, status=PaymentState.SUCCESS, gateway_payment_id=paid_attempt.attempt_id)
    issuer = Issuer(
        name="CommDesk Technologies Pvt. Ltd.",
        address="Bengaluru, Karnataka, India",
        support_email="support@commdesk.example",
        support_phone="+91 80 4000 0000",
    )
    async with run.context.unit_of_work() as uow:
        await uow.payments.record_attempt(paid.payment_id, paid_attempt, now=NOW)
        await uow.payments.save(pending, replace(paid, version=pending.version + 1), None)
    async with run.context.unit_of_work() as uow:
        invoice = await issue_invoice(
            uow, paid.payment_id, renderer=InvoicePdf(), prefix="INV", issuer=issuer, now=NOW
        )
    assert invoice is not None
    return paid, invoice


def failure_email(payment: Payment) -> OutgoingEvent:
    failed = replace(payment, status=PaymentState.FAILED, failure_reason="auth_declined")
    events = PaymentFailed(event_id=f"evt_{uuid.uuid4().hex}", payment=failed, occurred_at=NOW).outgoing()
    [email] = [event for event in events if event.routing_key == "email.payment.failed"]
    return email


def refund_email(refund_id: str, payment_id: str) -> OutgoingEvent:
    payload = {
        "schemaVersion": 1,
        "refundId": refund_id,
        "paymentId": payment_id,
        "amount": "500.00",
        "currency": "INR",
        "status": "PROCESSING",
        "speed": "STANDARD",
        "reason": "customer asked",
        "statusDescription": None,
        "occurredAt": NOW.isoformat(),
    }
    return OutgoingEvent(
        event_id=f"refund_{refund_id}_v2_email.payment.refund",
        routing_key="email.payment.refund",
        payload=payload,
        occurred_at=NOW,
    )


def alert_email() -> OutgoingEvent:
    alert = Alert(
        kind="payment_failure_rate",
        subject=f"method:upi{uuid.uuid4().hex[:6]}",
        severity=Severity.CRITICAL,
        title="Payment failures at 80% over 5 min",
        details={"failed": 8, "succeeded": 2, "failureRate": "0.8"},
        since=NOW - timedelta(minutes=5),
        raised_at=NOW,
        source="alerts",
    )
    return OutgoingEvent(
        event_id=f"evt_{alert.alert_id}",
        routing_key="email.admin.alert",
        payload=alert.message(),
        occurred_at=NOW,
    )


# --- reading what arrived -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrived:
    message: MimeMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text part"
        return part.get_content()

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "no HTML part"
        return part.get_content()

    def pdf_text(self) -> tuple[str, str]:
        """The attached PDF's file name and the text pypdf reads from it."""
        [attachment] = list(self.message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        reader = PdfReader(io.BytesIO(attachment.get_content()))
        return attachment.get_filename() or "", "\n".join(page.extract_text() for page in reader.pages)


def by_kind(messages: list[MimeMessage]) -> dict[str, Arrived]:
    arrived = {message[KIND_HEADER]: Arrived(message) for message in messages}
    assert len(arrived) == len(messages), "one message per kind"
    return arrived


# --- the tests ----------------------------------------------------------------------------------------


async def test_each_kind_of_email_arrives_with_what_it_must_say(run: Run) -> None:
    paid, invoice = await a_paid_payment_with_its_invoice(run)
    failed = await a_payment(run, status=PaymentState.FAILED)
    refunded = await a_payment(run, status=PaymentState.SUCCESS)
    refund = new_refund(
        refunded, amount=Money.of("500.00", "INR"), status=RefundState.PROCESSING, speed=RefundSpeed.STANDARD
    )
    async with run.context.unit_of_work() as uow:
        await uow.refunds.add(refund)
    success, generated = invoice_events(invoice, occurred_at=NOW)
    requests = [
        success,
        generated,
        failure_email(failed),
        refund_email(refund.refund_id, refunded.payment_id),
        alert_email(),
    ]

    for request in requests:
        await run.publish(request)
    mails = by_kind(await run.sink.wait_for_messages(5, within=20))

    for message in (m.message for m in mails.values()):
        assert message["From"] == "CommDesk Payments <payments@commdesk.example>"
        assert re.fullmatch(r"<eml_[0-9a-f]{32}@commdesk\.example>", message["Message-ID"])

    receipt = mails["payment_success"]
    assert receipt.message["To"] == CUSTOMER
    assert receipt.message["Subject"] == f"Payment received: INR 1,499.00 (invoice {invoice.number})"
    for part in (receipt.text, receipt.html):
        for shown in (
            paid.payment_id,
            paid.gateway_payment_id,
            "1,499.00",
            "UPI",
            invoice.number,
            "support@commdesk.example",
        ):
            assert shown in part
    assert "26 Nov 2026, 15:30 IST" in receipt.text  # the successful attempt's completion, in IST
    filename, document = receipt.pdf_text()
    assert filename == f"{invoice.number}.pdf"
    assert invoice.number in document
    assert "1,499.00" in document

    copy = mails["invoice_generated"]
    assert copy.message["To"] == BILLING
    assert invoice.number in copy.message["Subject"]
    assert paid.payment_id in copy.text
    assert copy.pdf_text()[0] == f"{invoice.number}.pdf"

    failure = mails["payment_failed"]
    assert failure.message["To"] == CUSTOMER
    assert "Your bank declined the payment." in failure.text
    assert f"https://app.commdesk.example/pay/{failed.payment_id}" in failure.text
    assert f'href="https://app.commdesk.example/pay/{failed.payment_id}"' in failure.html
    assert "+91 80 4000 0000" in failure.text
    assert list(failure.message.iter_attachments()) == []

    refund_mail = mails["payment_refund"]
    assert refund_mail.message["To"] == CUSTOMER
    assert refund_mail.message["Subject"] == "Refund of INR 500.00: On its way"
    assert "5 to 7 working days" in refund_mail.text
    assert "5 to 7 working days" in refund_mail.html

    alert = mails["admin_alert"]
    assert alert.message["To"] == ADMIN
    assert alert.message["Subject"] == "[CRITICAL] Payment failures at 80% over 5 min"
    for shown in ("26 Nov 2026, 15:25 IST", "Failure rate", "0.8", "https://payments.commdesk.example/admin"):
        assert shown in alert.text
        assert shown in alert.html

    for request in requests:
        record = await run.settled_email(request.event_id)
        assert record.status is EmailStatus.SENT
        assert record.attempts == 1
        assert record.provider_message_id is not None
        assert record.provider_message_id.startswith("OK queued as ")


async def test_a_message_delivered_twice_sends_one_email(run: Run) -> None:
    request = failure_email(await a_payment(run, status=PaymentState.FAILED))

    await run.publish(request)
    first = await run.settled_email(request.event_id)
    await run.publish(request)  # the broker delivers it again (same message id)
    await eventually(lambda: run.finished_ok() >= 2, what="both deliveries handled")

    assert len(run.sink.received) == 1
    assert (first.status, first.attempts) == (EmailStatus.SENT, 1)
    assert await run.emails_of(request.event_id) == [first]


async def test_a_server_that_refuses_then_recovers_gets_the_email_after_retries(run: Run) -> None:
    request = failure_email(await a_payment(run, status=PaymentState.FAILED))
    run.sink.refuse_next(2, 451)

    await run.publish(request)
    [message] = await run.sink.wait_for_messages(1, within=RETRIES_DEADLINE)

    assert message["To"] == CUSTOMER
    assert run.sink.refused == 2
    record = await run.settled_email(request.event_id)
    assert (record.status, record.attempts) == (EmailStatus.SENT, 3)
    assert (
        run.metric("payments_email_delivery_failures_total", kind="payment_failed", reason="transient") == 2
    )
    assert run.metric("payments_retries_total", queue=run.queue.name, tier="30s") == 1
    assert run.metric("payments_retries_total", queue=run.queue.name, tier="2m") == 1


async def test_a_server_that_never_recovers_dead_letters_the_message_counted_and_failed(run: Run) -> None:
    request = failure_email(await a_payment(run, status=PaymentState.FAILED))
    run.sink.refuse_all(451)

    await run.publish(request)
    await eventually(lambda: run.depth(run.queue.dead_letter_queue), timeout=RETRIES_DEADLINE, what="the DLQ")

    assert run.sink.received == []
    assert run.sink.refused == 5
    record = await run.settled_email(request.event_id)
    assert (record.status, record.attempts) == (EmailStatus.FAILED, 5)
    assert "451" in (record.last_error or "")
    assert CUSTOMER not in (record.last_error or "")
    assert (
        run.metric("payments_email_delivery_failures_total", kind="payment_failed", reason="transient") == 5
    )
    assert run.metric("payments_dead_letters_total", queue=run.queue.name, reason="exhausted") == 1
    dead = await take_one(run, run.queue.dead_letter_queue)
    assert dead.message_id == request.event_id
    assert dead.headers[FAILURES_HEADER] == 5


async def test_a_server_that_refuses_for_good_dead_letters_the_message_at_once(run: Run) -> None:
    request = failure_email(await a_payment(run, status=PaymentState.FAILED))
    run.sink.refuse_all(550)

    await run.publish(request)
    await eventually(lambda: run.depth(run.queue.dead_letter_queue), timeout=RETRIES_DEADLINE, what="the DLQ")

    record = await run.settled_email(request.event_id)
    assert (record.status, record.attempts) == (EmailStatus.FAILED, 1)
    assert run.metric("payments_email_delivery_failures_total", kind="payment_failed", reason="refused") == 1
    assert run.metric("payments_dead_letters_total", queue=run.queue.name, reason="email_refused") == 1


async def take_one(run: Run, name: str) -> Any:
    channel = await run.resources.amqp.channel()
    queue = await channel.declare_queue(name, passive=True)
    message = await queue.get(fail=False)
    assert message is not None, f"{name} is empty"
    await message.ack()
    await channel.close()
    return message

"""The email flow: each ``email.*`` message becomes its emails, each sent once and recorded in ``emails``.

``emails.outgoing`` carries every key of ``email.exchange``. For each message the agent tells the kind
(``domain/notification/model.py::kind_of``), loads what the email needs (the payment and its
customer's address, the refund, the invoice and its PDF), builds the template context (``content.py``)
and, per recipient:

1. renders the email, then records it with ``emails.begin`` (PENDING); a recorded SENT email was sent
   for this message already (a redelivery, a replay): it is skipped. A customer email (one recipient)
   is loaded and recorded in one transaction; an admin alert is recorded per admin, in a transaction
   of its own just before it is sent;
2. hands it to ``ctx.mailer`` outside any transaction (an SMTP exchange can take seconds);
3. records the outcome: ``sent`` with the server's queue id; or, when the server did not take it,
   ``attempt_failed`` and the failure metric, then re-raises so the runtime moves the message to its
   next retry tier. A refusal for good (``EmailRefused``, a ``Reject``) or the failure after the last
   tier is recorded ``gave_up`` (FAILED), because the runtime sends that message to the DLQ.

At-least-once, like the broker: a crash between the server taking an email and ``sent`` committing
sends it again on redelivery, and so may two copies of one message handled at the same moment (the
relay can publish an event twice); the copy carries the same ``Message-ID`` (derived from the email's
id), so mail clients can recognise it. A message re-driven from the DLQ tries its FAILED emails again
(SENT ones stay sent). A customer who gave no email address gets no email and leaves no row:
there is no recipient to record (an info line names the payment). A failure email for a payment that
has since been paid is not sent: the customer would be told to pay for what they already paid.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from payments.domain.errors import InvalidPayload, Reject
from payments.domain.gateway import AttemptStatus, GatewayAttempt
from payments.domain.invoice.model import Invoice, InvoiceNotFound
from payments.domain.invoice.service import INVOICEABLE
from payments.domain.notification import content
from payments.domain.notification.content import Contacts
from payments.domain.notification.model import EmailKind, EmailRecord, EmailRequest, EmailStatus, kind_of
from payments.domain.notification.rendering import RenderedEmail
from payments.domain.notification.sending import Attachment, EmailMessage
from payments.domain.payment.model import Payment
from payments.domain.unit_of_work import UnitOfWork
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.logging import mask_text
from payments.pipeline.retry import Action, decide
from payments.pipeline.runtime import describe_error
from payments.pipeline.settings import Settings
from payments.pipeline.stream import Event, Stream

logger = logging.getLogger(__name__)

emails = Blueprint("email")

#: Names an email's kind, for mail filters and for reading a sink; never personal data.
KIND_HEADER: Final = "X-CommDesk-Email-Kind"
#: The metric's reasons: the server may take the email later, or it never will.
TRANSIENT: Final = "transient"
REFUSED: Final = "refused"


@dataclass(frozen=True)
class Draft:
    """One email before it is rendered: to whom, with what context and attachments."""

    recipient: str
    context: Mapping[str, Any]
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Recorded:
    """An email rendered and recorded PENDING (``emails.begin``), ready to be handed to the server."""

    draft: Draft
    rendered: RenderedEmail
    email_id: str


@emails.agent(topology.EMAILS, value_type=EmailRequest, concurrency=4)
async def send_emails(stream: Stream[EmailRequest], ctx: AgentContext) -> None:
    """Send the emails each message asks for, once per recipient, recording each in ``emails``."""
    async for event in stream:
        kind = kind_of(event.value, event.routing_key)
        if kind is EmailKind.ADMIN_ALERT:
            for draft in admin_drafts(ctx, event.value):
                async with ctx.unit_of_work() as uow:
                    recorded = await record(ctx, uow, event, kind, draft)
                await deliver(ctx, event, kind, recorded)
            continue
        # A loader gives at most one email: reading and recording it share one transaction.
        async with ctx.unit_of_work() as uow:
            drafts = await _LOADERS[kind](uow, event.value, ctx.settings)
            emails_to_send = [await record(ctx, uow, event, kind, draft) for draft in drafts]
        for recorded in emails_to_send:
            await deliver(ctx, event, kind, recorded)


def contacts(settings: Settings) -> Contacts:
    return Contacts(
        support_email=settings.email.support_email,
        support_phone=settings.email.support_phone,
        payment_retry_url=settings.email.payment_retry_url,
        admin_url=f"{settings.web.public_base_url}/admin",
    )


def admin_drafts(ctx: AgentContext, request: EmailRequest) -> list[Draft]:
    """An admin alert's email, one per admin address; it needs nothing from the database."""
    context = content.admin_alert(request, contacts=contacts(ctx.settings))
    return [Draft(address, context) for address in ctx.settings.email.admin_emails]


async def _payment_success(uow: UnitOfWork, request: EmailRequest, settings: Settings) -> list[Draft]:
    payment = await uow.payments.get(_required(request.payment_id))
    if not payment.customer.email:
        return _nobody(payment, EmailKind.PAYMENT_SUCCESS)
    invoice, pdf = await _invoice(uow, payment.payment_id)
    paid_by = await _successful_attempt(uow, payment)
    completed = paid_by.completed_at if paid_by else None
    paid_at = completed or request.occurred_at or payment.updated_at
    context = content.payment_success(
        payment, invoice, paid_at=paid_at, paid_by=paid_by, contacts=contacts(settings)
    )
    return [Draft(payment.customer.email, context, (_pdf(invoice, pdf),))]


async def _payment_failed(uow: UnitOfWork, request: EmailRequest, settings: Settings) -> list[Draft]:
    payment = await uow.payments.get(_required(request.payment_id))
    if payment.status in INVOICEABLE:  # reached only by succeeding: paid after the failed attempt
        logger.info("payment %s was paid after this failure: no failure email", payment.payment_id)
        return []
    if not payment.customer.email:
        return _nobody(payment, EmailKind.PAYMENT_FAILED)
    context = content.payment_failed(
        payment, failure_reason=request.failure_reason, contacts=contacts(settings)
    )
    return [Draft(payment.customer.email, context)]


async def _payment_refund(uow: UnitOfWork, request: EmailRequest, settings: Settings) -> list[Draft]:
    refund = await uow.refunds.get(_required(request.refund_id))
    payment = await uow.payments.get(refund.payment_id)
    if not payment.customer.email:
        return _nobody(payment, EmailKind.PAYMENT_REFUND)
    context = content.payment_refund(
        refund,
        status=_required(request.status),
        status_description=request.status_description,
        contacts=contacts(settings),
    )
    return [Draft(payment.customer.email, context)]


async def _invoice_generated(uow: UnitOfWork, request: EmailRequest, settings: Settings) -> list[Draft]:
    invoice, pdf = await _invoice(uow, _required(request.payment_id))
    return [Draft(settings.email.billing_email, content.invoice_generated(invoice), (_pdf(invoice, pdf),))]


_LOADERS: Final[
    Mapping[EmailKind, Callable[[UnitOfWork, EmailRequest, Settings], Awaitable[list[Draft]]]]
] = {
    EmailKind.PAYMENT_SUCCESS: _payment_success,
    EmailKind.PAYMENT_FAILED: _payment_failed,
    EmailKind.PAYMENT_REFUND: _payment_refund,
    EmailKind.INVOICE_GENERATED: _invoice_generated,
}


async def record(
    ctx: AgentContext, uow: UnitOfWork, event: Event[EmailRequest], kind: EmailKind, draft: Draft
) -> Recorded | None:
    """Render ``draft`` and record it PENDING in ``uow``; None if it was sent for this message already."""
    rendered = ctx.email_renderer.render(kind, draft.context)
    pending = EmailRecord.pending(
        event_id=event.event_id,
        kind=kind,
        recipient=draft.recipient,
        recipient_digest=ctx.digest(draft.recipient, kind="email"),
        subject=rendered.subject,
        now=ctx.clock.now(),
    )
    stored = await uow.emails.begin(pending)
    if stored.status is EmailStatus.SENT:
        to = mask_text(draft.recipient)
        logger.info("%s email %s to %s was sent already; not again", kind.value, stored.email_id, to)
        return None
    return Recorded(draft, rendered, stored.email_id)


async def deliver(
    ctx: AgentContext, event: Event[EmailRequest], kind: EmailKind, recorded: Recorded | None
) -> None:
    """Hand a recorded email to the server, outside any transaction, and record the outcome."""
    if recorded is None:
        return
    draft, rendered, email_id = recorded.draft, recorded.rendered, recorded.email_id
    message = EmailMessage(
        message_id=f"<{email_id}@{sender_domain(ctx.settings.email.sender)}>",
        sender=ctx.settings.email.sender,
        recipients=(draft.recipient,),
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        attachments=draft.attachments,
        headers=((KIND_HEADER, kind.value),),
    )
    try:
        answer = await ctx.mailer.send(message)
    except Exception as error:
        await _record_failure(ctx, event, kind, email_id, error)
        raise
    async with ctx.unit_of_work() as uow:
        await uow.emails.sent(email_id, provider_message_id=answer, now=ctx.clock.now())
    logger.info("sent %s email %s to %s", kind.value, email_id, mask_text(draft.recipient))


async def _record_failure(
    ctx: AgentContext, event: Event[EmailRequest], kind: EmailKind, email_id: str, error: Exception
) -> None:
    """Count the failure; FAILED if the runtime will dead-letter the message, else still PENDING."""
    reason = REFUSED if isinstance(error, Reject) else TRANSIENT
    ctx.metrics.email_delivery_failures.labels(kind.value, reason).inc()
    # The runtime's own policy, asked with the same inputs it will use for this failure.
    final = decide(error, previous_failures=event.failures, delay_scale=0.0).action is Action.DEAD_LETTER
    description, now = describe_error(error), ctx.clock.now()
    async with ctx.unit_of_work() as uow:
        if final:
            await uow.emails.gave_up(email_id, error=description, now=now)
        else:
            await uow.emails.attempt_failed(email_id, error=description, now=now)
    logger.warning(
        "%s email %s not sent (%s, failure %d%s): %s",
        kind.value,
        email_id,
        reason,
        event.failures + 1,
        ", giving up" if final else "",
        description,
    )


def sender_domain(sender: str) -> str:
    """The domain of ``EMAIL_FROM`` (``CommDesk <payments@commdesk.example>`` -> ``commdesk.example``)."""
    address = email.utils.parseaddr(sender)[1]
    _, at, domain = address.rpartition("@")
    return domain if at and domain else "localhost"


async def _invoice(uow: UnitOfWork, payment_id: str) -> tuple[Invoice, bytes]:
    invoice = await uow.invoices.for_payment(payment_id)
    if invoice is None:
        # The invoice commits with the outbox event asking for this email, so this is no race: the
        # message walks the retry tiers to the DLQ, where an operator sees it.
        raise InvoiceNotFound(f"payment {payment_id} has no invoice")
    return invoice, await uow.invoices.document(invoice.invoice_id)


async def _successful_attempt(uow: UnitOfWork, payment: Payment) -> GatewayAttempt | None:
    """The attempt that paid ``payment``: the one it names, else its successful one (an order has one)."""
    succeeded = [
        a for a in await uow.payments.attempts(payment.payment_id) if a.status is AttemptStatus.SUCCESS
    ]
    decided = [a for a in succeeded if a.attempt_id == payment.gateway_payment_id]
    return next(iter(decided or succeeded), None)


def _pdf(invoice: Invoice, pdf: bytes) -> Attachment:
    return Attachment(filename=f"{invoice.number}.pdf", content_type="application/pdf", content=pdf)


def _nobody(payment: Payment, kind: EmailKind) -> list[Draft]:
    logger.info("payment %s has no customer email: no %s email", payment.payment_id, kind.value)
    return []


def _required(value: str | None) -> str:
    # ``kind_of`` refused messages that lack what their kind needs; this narrows the type.
    if value is None:
        raise InvalidPayload("the message lacks a field its kind of email needs")
    return value

"""The invoices flow: an invoice for every successful payment, and with it the customer's success email.

``invoices.payments`` carries ``payment.success``. For each event the agent claims it in the inbox and
issues the payment's invoice in the same transaction (``domain/invoice/service.py``): a redelivered or
concurrent copy of the event finds the claim, or the invoice, and does nothing more. The invoice's
outbox events ask the email agent for the success email (with the PDF attached) and the billing copy,
so the success email waits for the invoice it carries.

The payment is read again under its row lock, not taken from the event: an event that arrives after a
settlement or a refund still gets the invoice (the payment did succeed), and one whose payment never
succeeded gets none (logged). Not ``replayable``: replaying old successes would email customers about
payments they made long ago.
"""

from __future__ import annotations

import logging
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from payments.domain.errors import InvalidPayload, NotFound
from payments.domain.invoice.document import Issuer
from payments.domain.invoice.service import issue_invoice
from payments.domain.payment.commands import Actor
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Event, Stream

logger = logging.getLogger(__name__)

invoices = Blueprint("invoices")

#: The inbox consumer name of this flow.
CONSUMER: Final = "invoices"
#: Who issues invoices, in the audit log.
ACTOR_ID: Final = "invoices-agent"


class PaymentSucceeded(BaseModel):
    """A ``payment.success`` event as far as invoicing reads it; every other field is ignored.

    ``type`` tells the event apart, not the routing key: a message back from a retry tier carries its
    queue's name instead. Anything but a payment success does not validate (DLQ).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)

    type: Literal["payment.success"]
    payment_id: str = Field(min_length=1, max_length=128)


@invoices.agent(topology.INVOICE_PAYMENTS, value_type=PaymentSucceeded, concurrency=4)
async def invoice_payments(stream: Stream[PaymentSucceeded], ctx: AgentContext) -> None:
    """Issue the invoice of each successful payment, once; it asks for the success email."""
    issuer = issuer_from(ctx)
    async for event in stream:
        await handle(ctx, event, issuer)


async def handle(ctx: AgentContext, event: Event[PaymentSucceeded], issuer: Issuer) -> None:
    payment_id = event.value.payment_id
    async with ctx.unit_of_work() as uow:
        if not await uow.inbox.claim(consumer=CONSUMER, event_id=event.event_id):
            return  # handled before: a redelivery
        try:
            invoice = await issue_invoice(
                uow,
                payment_id,
                renderer=ctx.invoice_renderer,
                prefix=ctx.settings.invoices.prefix,
                issuer=issuer,
                now=ctx.clock.now(),
                actor=_actor(event),
            )
        except NotFound:
            # The event was published after its payment committed, so this is not a race to retry.
            raise InvalidPayload(f"payment.success names unknown payment {payment_id}") from None
    if invoice is None:
        logger.warning("payment %s never succeeded; no invoice issued", payment_id)
    else:
        logger.info("payment %s has invoice %s", payment_id, invoice.number)


def issuer_from(ctx: AgentContext) -> Issuer:
    """The issuer block every invoice prints, from ``settings.invoices`` and ``settings.email``."""
    invoicing, email = ctx.settings.invoices, ctx.settings.email
    return Issuer(
        name=invoicing.issuer,
        address=invoicing.issuer_address,
        tax_id=invoicing.issuer_tax_id,
        support_email=email.support_email,
        support_phone=email.support_phone,
    )


def _actor(event: Event[PaymentSucceeded]) -> Actor:
    return Actor(actor_id=ACTOR_ID, trace_id=event.trace.trace_id, request_id=event.trace.request_id)

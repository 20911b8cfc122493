"""The payments flow: create and verify payments as the API asks, and expire unpaid ones.

Commands arrive on ``payments.commands`` (``command.payment.create`` / ``.verify``). A command that ends
in a business answer (created, verified, refused) is answered and acknowledged; a transient failure
(gateway or database unavailable, payment busy) raises, so the message walks the retry tiers, and the
waiting API call answers 202 instead. Both commands are idempotent: the ids are derived from the
caller's idempotency key and every change is a guarded transition.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from payments.agents.fraud_tables import fraud_screen
from payments.domain.errors import PaymentsError, Retry
from payments.domain.payment.commands import PAYMENT_COMMANDS, CreatePayment, VerifyPayment
from payments.domain.payment.service import PaymentService
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Stream

logger = logging.getLogger(__name__)

payments = Blueprint("payments")

#: Payments expired per run of the expiry job; the next run takes the rest.
EXPIRY_BATCH = 200


def payment_service(ctx: AgentContext) -> PaymentService:
    """The payment service, screening every create against the fraud tables."""
    return PaymentService(
        unit_of_work=ctx.unit_of_work,
        gateway=ctx.gateway,
        locks=ctx.locks,
        clock=ctx.clock,
        fraud=fraud_screen(ctx),
        fraud_alert_cooldown=timedelta(seconds=ctx.settings.fraud.alert_cooldown_seconds),
    )


@payments.agent(topology.PAYMENT_COMMANDS, value_type=PAYMENT_COMMANDS, concurrency=8)
async def handle_payment_commands(stream: Stream[CreatePayment | VerifyPayment], ctx: AgentContext) -> None:
    """Create or verify each payment the API asks for, and answer the waiting request."""
    service = payment_service(ctx)
    async for event in stream:
        command = event.value
        try:
            if isinstance(command, CreatePayment):
                payment = await service.create(command)
            else:
                payment = await service.verify(command)
        except Retry:
            raise  # transient: the retry tiers try again; the API has answered 202 by then
        except PaymentsError as refused:
            logger.info("payment command refused: %s", refused.code)
            await ctx.answer(event, error=refused)
            continue
        await ctx.answer(event, result={"paymentId": payment.payment_id, "status": payment.status.value})


@payments.crontab("*/5 * * * *")
async def expire_unpaid_payments(ctx: AgentContext) -> None:
    """Every five minutes: expire unpaid payments whose order expired (after asking the gateway)."""
    expired = await payment_service(ctx).expire_due(limit=EXPIRY_BATCH)
    if expired:
        logger.info("expired %d payments", expired)

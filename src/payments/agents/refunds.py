"""The refunds flow: refund requests from the API, and a poll for refunds the gateway has not settled.

Commands arrive on ``refunds.commands`` (``command.refund.initiate``). A business refusal (over the
balance, not refundable, not yours) is answered and acknowledged; a transient failure raises, so the
command walks the retry tiers with the same refund id, which Cashfree treats as the same refund.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from payments.domain.errors import PaymentsError, Retry
from payments.domain.payment.service import SYSTEM
from payments.domain.refund.commands import REFUND_COMMANDS, RequestRefund
from payments.domain.refund.model import Refund
from payments.domain.refund.service import RefundService
from payments.domain.refund.states import RefundState
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Stream

logger = logging.getLogger(__name__)

refunds = Blueprint("refunds")

#: A refund not settled by the gateway's webhook this long after its last change is asked about.
STUCK_AFTER: Final = timedelta(minutes=10)
#: Refunds asked about per poll; the next poll takes the rest.
POLL_BATCH: Final = 100


def refund_service(ctx: AgentContext) -> RefundService:
    """The refund engine, timing every refund from request to final state."""

    def observe(refund: Refund) -> None:
        settled_at = refund.processed_at or refund.updated_at
        outcome = "success" if refund.status is RefundState.SUCCESS else "failed"
        ctx.metrics.refund_latency.labels(outcome).observe((settled_at - refund.created_at).total_seconds())

    return RefundService(
        unit_of_work=ctx.unit_of_work,
        gateway=ctx.gateway,
        locks=ctx.locks,
        clock=ctx.clock,
        on_settled=observe,
    )


@refunds.agent(topology.REFUND_COMMANDS, value_type=REFUND_COMMANDS, concurrency=4)
async def handle_refund_commands(stream: Stream[RequestRefund], ctx: AgentContext) -> None:
    """Reserve and submit each refund the API asks for, and answer the waiting request."""
    service = refund_service(ctx)
    async for event in stream:
        try:
            refund = await service.request(event.value)
        except Retry:
            raise  # transient: the tiers retry with the same refund id; the API answered 202
        except PaymentsError as refused:
            logger.info("refund command refused: %s", refused.code)
            await ctx.answer(event, error=refused)
            continue
        await ctx.answer(event, result={"refundId": refund.refund_id, "status": refund.status.value})


@refunds.timer(seconds=60)
async def poll_unsettled_refunds(ctx: AgentContext) -> None:
    """Every minute: ask the gateway about refunds it has not settled for ten minutes."""
    service = refund_service(ctx)
    async with ctx.unit_of_work() as uow:
        stuck = await uow.refunds.unsettled(updated_before=ctx.clock.now() - STUCK_AFTER, limit=POLL_BATCH)
    for refund in stuck:
        try:
            await service.sync(refund.refund_id, SYSTEM)
        except Retry as unavailable:
            logger.warning("could not poll refund %s: %s", refund.refund_id, unavailable.code)

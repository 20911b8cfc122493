"""The streaming half of reconciliation: settle payments as Cashfree's settlement webhooks arrive.

A settlement webhook is a hint like any other (DESIGN §6): it names a payout (settlement id, UTR,
amount) but not the orders in it. So the agent asks the gateway for the settlements around the
payout's time and applies each order's share of that payout through ``PaymentService.settle``: the
settlement is stored, a SUCCESS payment moves to SETTLED with its settlement amount, and a payment
we still think unpaid is confirmed with the gateway first (a stuck PENDING payment that was in fact
paid ends SETTLED). Each (settlement, order) is claimed in the inbox with its effects, so a
redelivered or replayed webhook changes nothing. Every other webhook is ignored here; the webhooks
agent logs and applies those. The scheduled reconciliation run catches whatever this misses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from payments.agents.payments import payment_service
from payments.domain.errors import Retry
from payments.domain.gateway import GatewaySettlement
from payments.domain.payment.commands import Actor
from payments.domain.payment.model import Payment
from payments.domain.webhook.intake import ReceivedWebhook
from payments.domain.webhook.notification import GatewayNotification, NotificationKind
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Event, Stream

logger = logging.getLogger(__name__)

reconciliation = Blueprint("reconciliation")

#: The inbox consumer of settlements applied by this agent.
CONSUMER: Final = "reconciliation"
#: Searched on each side of the payout's times: Cashfree lists settlements by payout time, and the
#: webhook's times (payout, initiation, first and last payment) may be a day apart from it.
SEARCH_MARGIN: Final = timedelta(days=1)
#: Only a payout that reached the bank settles payments; initiated, failed and reversed ones do not.
_PAID_OUT: Final = frozenset({"SETTLEMENT_SUCCESS"})
_TIME_FIELDS: Final = ("settled_on", "settlement_initiated_on", "payment_from", "payment_till")


class SettlementNotListedYet(Retry):
    """The gateway does not list the payout's settlements yet; asked again later."""

    code = "settlement_not_listed_yet"


@reconciliation.agent(topology.RECONCILIATION_SETTLEMENTS, value_type=ReceivedWebhook, concurrency=2)
async def match_settlements(stream: Stream[ReceivedWebhook], ctx: AgentContext) -> None:
    """Settle the payments of each payout Cashfree reports paid; ignore every other webhook."""
    async for event in stream:
        if not event.value.event_type.upper().startswith("SETTLEMENT"):
            continue  # cheap: most webhooks are payments, and the webhooks agent handles them
        notification = ctx.webhooks.read(event.value.body, event.value.headers)
        if notification.kind is not NotificationKind.SETTLEMENT:
            continue
        if notification.event_type.upper() not in _PAID_OUT:
            logger.info(
                "settlement %s: %s, nothing to settle", notification.settlement_id, notification.event_type
            )
            continue
        await _apply_payout(ctx, notification, _actor(event))


async def _apply_payout(ctx: AgentContext, notification: GatewayNotification, actor: Actor) -> None:
    start, end = search_window(notification, now=ctx.clock.now())
    shares = matching(await ctx.gateway.settlements(start, end), notification)
    if not shares:
        raise SettlementNotListedYet(f"settlement {notification.settlement_id} is not listed yet")
    service = payment_service(ctx)
    outcomes: list[Payment | None] = []
    for share in sorted(shares, key=lambda s: s.order_id):
        outcomes.append(await service.settle(share, actor, inbox_consumer=CONSUMER))
    settled = sum(1 for payment in outcomes if payment is not None and payment.settlement_status == "SETTLED")
    orphans = sum(1 for payment in outcomes if payment is None)
    logger.info(
        "settlement %s (utr %s): %d orders matched, %d payments settled, %d orders unknown to us",
        notification.settlement_id,
        notification.utr,
        len(shares),
        settled,
        orphans,
    )


def matching(
    settlements: Sequence[GatewaySettlement], notification: GatewayNotification
) -> list[GatewaySettlement]:
    """The orders' shares of the payout the webhook is about.

    Matched by settlement id, or by UTR: Cashfree's settlement webhook carries the numeric
    ``settlement_id`` while the settlement listing is keyed by ``cf_settlement_id``; the UTR is the
    same bank reference in both.
    """
    wanted_id, wanted_utr = notification.settlement_id, notification.utr
    return [
        s
        for s in settlements
        if (wanted_id is not None and s.settlement_id == wanted_id) or (wanted_utr and s.utr == wanted_utr)
    ]


def search_window(notification: GatewayNotification, *, now: datetime) -> tuple[datetime, datetime]:
    """The payout-time range to list settlements over: the webhook's times, widened by a day."""
    details = _details(notification.raw)
    times = [t for t in (_time(details.get(name)) for name in _TIME_FIELDS) if t is not None]
    if not times:
        times = [notification.occurred_at or now]
    return min(times) - SEARCH_MARGIN, max(times) + SEARCH_MARGIN


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else None  # a time without a zone is not guessed


def _actor(event: Event[ReceivedWebhook]) -> Actor:
    return Actor(actor_id="reconciliation", trace_id=event.trace.trace_id, request_id=event.trace.request_id)


def _details(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    data = raw.get("data")
    settlement = data.get("settlement") if isinstance(data, Mapping) else None
    return settlement if isinstance(settlement, Mapping) else {}

"""The webhook flow: every delivery ingest queued is logged, read, confirmed with the gateway, applied.

A webhook is a hint, never proof (DESIGN §6): a payment event makes the payment service ask Cashfree
for the order and its attempts and apply what Cashfree says, so an old or repeated event can never
move a payment backwards, and applying one twice changes nothing; a refund event makes the refund
engine ask Cashfree about that refund. Settlement and dispute events are kept in the webhook log for
reconciliation; unknown types are logged and acknowledged. A payload
version this code does not know, or a body it cannot read, is parked in the dead-letter queue.

Messages: ``webhook.cashfree.processing`` when work starts, ``webhook.cashfree.retry`` after a transient
failure, and on a final failure ``webhook.cashfree.failed``, ``analytics.webhook.failure`` and (when the
message goes to the DLQ) ``webhook.cashfree.deadletter``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from payments.agents.payments import payment_service
from payments.agents.refunds import refund_service
from payments.domain.errors import NotFound, PaymentsError, Reject
from payments.domain.payment.commands import Actor
from payments.domain.payment.decisions import AmountMismatch
from payments.domain.unit_of_work import UnitOfWork
from payments.domain.webhook.events import webhook_event
from payments.domain.webhook.intake import ReceivedWebhook
from payments.domain.webhook.log import WebhookLog, WebhookStatus
from payments.domain.webhook.notification import GatewayNotification, NotificationKind
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.retry import Action, decide
from payments.pipeline.runtime import describe_error
from payments.pipeline.stream import Event, Stream

logger = logging.getLogger(__name__)

webhooks = Blueprint("webhooks")


class UnknownWebhookVersion(Reject):
    """The webhook's payload version is not one this code reads; it is parked for a later release."""

    code = "unknown_webhook_version"


@dataclass(frozen=True)
class Outcome:
    status: WebhookStatus
    reason: str | None = None
    order_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    kind: NotificationKind = NotificationKind.UNKNOWN


@webhooks.agent(topology.WEBHOOKS_RECEIVED, value_type=ReceivedWebhook, concurrency=8)
async def process_webhooks(stream: Stream[ReceivedWebhook], ctx: AgentContext) -> None:
    """Log, confirm and apply each gateway webhook exactly once in effect, whatever the order."""
    async for event in stream:
        log = await _start(ctx, event.value)
        if log is None:
            continue  # already applied: a redelivery
        try:
            outcome = await _apply(ctx, event.value, _actor(event))
        except Exception as error:
            await _record_failure(ctx, log, error, event)
            raise
        await _finish(ctx, log, outcome)
        _observe_processing(ctx, event.value, outcome)


def _actor(event: Event[ReceivedWebhook]) -> Actor:
    return Actor(
        actor_id=f"{event.value.provider}-webhook",
        user_agent=event.value.headers.get("user-agent"),
        trace_id=event.trace.trace_id,
        request_id=event.trace.request_id,
    )


async def _start(ctx: AgentContext, received: ReceivedWebhook) -> WebhookLog | None:
    now = ctx.clock.now()
    async with ctx.unit_of_work() as uow:
        log = await uow.webhooks.record(received)
        if log.status is WebhookStatus.SUCCESS:
            return None
        if log.status is WebhookStatus.PROCESSING:
            return log  # a retry: its failure was recorded, and announced, when it happened
        log = await uow.webhooks.move(log, WebhookStatus.PROCESSING, now=now)
        await uow.outbox.add(webhook_event(log, "webhook.cashfree.processing", now=now))
    return log


async def _apply(ctx: AgentContext, received: ReceivedWebhook, actor: Actor) -> Outcome:
    if received.version is not None and received.version not in ctx.webhooks.known_versions:
        raise UnknownWebhookVersion(f"payload version {received.version} is not supported yet")
    notification = ctx.webhooks.read(received.body, received.headers)
    payload = dict(notification.raw)
    if notification.kind is NotificationKind.PAYMENT:
        outcome = await _apply_payment(ctx, notification, actor, payload)
    elif notification.kind is NotificationKind.REFUND:
        outcome = await _apply_refund(ctx, notification, actor, payload)
    else:
        if notification.kind is NotificationKind.UNKNOWN:
            logger.info("acknowledged a webhook of a type we do not handle: %s", notification.event_type)
        # Settlement and dispute events are kept in the log; the reconciliation agent gets its own copy
        # of every webhook (queue reconciliation.settlements) and settles payments from SETTLEMENT_SUCCESS.
        outcome = Outcome(WebhookStatus.SUCCESS, order_id=notification.order_id, payload=payload)
    return replace(outcome, kind=notification.kind)


async def _apply_payment(
    ctx: AgentContext, notification: GatewayNotification, actor: Actor, payload: dict[str, Any]
) -> Outcome:
    order_id = notification.order_id
    try:
        async with ctx.unit_of_work() as uow:
            payment = await uow.payments.get_by_order_id(order_id or "")
    except NotFound:
        # Not ours (or not any more): reconciliation reports it as an orphan; retrying cannot help.
        return Outcome(WebhookStatus.FAILED, "no payment has this order id", order_id, payload)
    try:
        await payment_service(ctx).reconcile(payment, actor)
    except AmountMismatch as mismatch:
        return Outcome(WebhookStatus.FAILED, mismatch.message, order_id, payload)
    return Outcome(WebhookStatus.SUCCESS, order_id=order_id, payload=payload)


async def _apply_refund(
    ctx: AgentContext, notification: GatewayNotification, actor: Actor, payload: dict[str, Any]
) -> Outcome:
    """Like a payment event, a refund event is a hint: the refund engine asks the gateway itself."""
    try:
        await refund_service(ctx).sync(notification.refund_id or "", actor)
    except NotFound:
        return Outcome(WebhookStatus.FAILED, "no refund has this refund id", notification.order_id, payload)
    return Outcome(WebhookStatus.SUCCESS, order_id=notification.order_id, payload=payload)


async def _finish(ctx: AgentContext, log: WebhookLog, outcome: Outcome) -> None:
    now = ctx.clock.now()
    async with ctx.unit_of_work() as uow:
        done = await uow.webhooks.move(
            log,
            outcome.status,
            now=now,
            reason=outcome.reason,
            order_id=outcome.order_id,
            payload=outcome.payload,
        )
        if done.status is WebhookStatus.FAILED:
            await _announce_failure(uow, done, now=now, reason=outcome.reason, dead_lettered=False)


def _observe_processing(ctx: AgentContext, received: ReceivedWebhook, outcome: Outcome) -> None:
    """Receipt at ingest to processing finished; a redelivery of a finished webhook is not timed."""
    elapsed = (ctx.clock.now() - received.received_at).total_seconds()
    ctx.metrics.webhook_processing.labels(outcome.kind.value.lower(), outcome.status.value.lower()).observe(
        max(0.0, elapsed)
    )


async def _record_failure(
    ctx: AgentContext, log: WebhookLog, error: Exception, event: Event[ReceivedWebhook]
) -> None:
    """Keep the failure in the log; a final one is announced (the runtime moves the message itself)."""
    final = decide(error, previous_failures=event.failures, delay_scale=1.0).action is Action.DEAD_LETTER
    reason = describe_error(error)
    now = ctx.clock.now()
    try:
        async with ctx.unit_of_work() as uow:
            current = await uow.webhooks.get(log.id)
            if not final:
                # PROCESSING again: the move counts the retry and keeps why it failed.
                retrying = await uow.webhooks.move(current, WebhookStatus.PROCESSING, now=now, reason=reason)
                retry = webhook_event(retrying, "webhook.cashfree.retry", now=now, reason=reason)
                await uow.outbox.add(retry)
                return
            failed = await uow.webhooks.move(current, WebhookStatus.FAILED, now=now, reason=reason)
            await _announce_failure(uow, failed, now=now, reason=reason, dead_lettered=True)
    except PaymentsError as also:
        # The database may be what failed; the message still goes to its tier, and the log catches
        # up on the next attempt.
        logger.warning("could not record webhook %s's failure: %s", log.id, also.code)


async def _announce_failure(
    uow: UnitOfWork, log: WebhookLog, *, now: Any, reason: str | None, dead_lettered: bool
) -> None:
    keys = ["webhook.cashfree.failed", "analytics.webhook.failure"]
    if dead_lettered:
        keys.append("webhook.cashfree.deadletter")
    for key in keys:
        await uow.outbox.add(webhook_event(log, key, now=now, reason=reason))

"""The alerts flow: failure rates, webhook failures and refund spikes from events; DLQs and queues by poll.

``alerts.payments`` carries ``payment.success``, ``payment.failed``, ``analytics.webhook.failure`` and
``analytics.refund.created``. Each event is counted in sliding tables (``settings.alerts.window_seconds``)
by event time, idempotently per event id, *before and regardless of* the inbox: a replay into empty
tables rebuilds them. The rules of ``domain/alerts/rules.py`` then read the tables at the event's time,
and what fires is raised in a unit of work whose inbox claim is new, so a replayed event never raises an
alert twice; ``raise_alert`` adds the cooldown (``settings.alerts.cooldown_seconds``). An event that
fires nothing touches no database.

A timer polls the broker's queue depths for DLQ growth and queue overload (see ``watch_queues``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

from payments.domain.alerts.model import Alert
from payments.domain.alerts.rules import (
    ALL,
    QueueDepth,
    Thresholds,
    dlq_growth_alerts,
    failure_rate_alert,
    is_dead_letter_queue,
    queue_overload_alerts,
    refund_spike_alert,
    webhook_failures_alert,
)
from payments.domain.alerts.service import raise_alert
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import AlertSettings
from payments.pipeline.stream import Event, Stream
from payments.tables.table import Kind, Table
from payments.tables.windows import Sliding, Tumbling

logger = logging.getLogger(__name__)

alerts = Blueprint("alerts")

#: The inbox consumer name of the alerts agent.
CONSUMER: Final = "alerts"
#: The payment method of a payment event that names none.
UNKNOWN_METHOD: Final = "unknown"
#: How often the queue watch wakes up. ``Blueprint.timer`` takes a constant, so the broker is polled on
#: the first tick after each multiple of ``settings.alerts.poll_seconds`` (at most one tick late; a
#: poll interval shorter than a tick polls every tick).
POLL_TICK_SECONDS: Final = 5.0
#: The key of the poll table: one count per poll, so a queue's depth of 0 differs from "not polled".
_BROKER: Final = "broker"


class Measure(StrEnum):
    """What an event on ``alerts.payments`` counts towards (named by the routing key it comes from)."""

    PAYMENT_SUCCEEDED = "payment.success"
    PAYMENT_FAILED = "payment.failed"
    WEBHOOK_FAILED = "analytics.webhook.failure"
    REFUND_CREATED = "analytics.refund.created"


class ObservedEvent(BaseModel):
    """The few fields the alerts read from the events they count; every other field is ignored.

    The routing key is not used to tell the events apart: a message back from a retry tier carries its
    queue's name instead. Payment events name their routing key in ``type``; a webhook failure has a
    ``webhookId``, a refund a ``refundId``. A message that is none of these does not validate (DLQ).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    type: str | None = Field(default=None, max_length=64)
    payment_method: str | None = Field(default=None, alias="paymentMethod", max_length=64)
    webhook_id: int | str | None = Field(default=None, alias="webhookId")
    provider: str = Field(default="cashfree", min_length=1, max_length=64)
    refund_id: str | None = Field(default=None, alias="refundId", max_length=128)
    occurred_at: datetime | None = Field(default=None, alias="occurredAt")

    @model_validator(mode="after")
    def _is_counted(self) -> ObservedEvent:
        _measure_of(self)  # raises for an event the alerts do not count
        return self

    @property
    def measure(self) -> Measure:
        return _measure_of(self)

    @property
    def method(self) -> str:
        return (self.payment_method or UNKNOWN_METHOD).lower()


def _measure_of(observed: ObservedEvent) -> Measure:
    if observed.type in {Measure.PAYMENT_SUCCEEDED, Measure.PAYMENT_FAILED}:
        return Measure(observed.type)
    if observed.webhook_id is not None:
        return Measure.WEBHOOK_FAILED
    if observed.refund_id is not None:
        return Measure.REFUND_CREATED
    raise ValueError("neither a payment outcome, a webhook failure nor a refund")


@dataclass(frozen=True)
class EventTables:
    """Counts in the sliding alert window, keyed by payment method (and ``ALL``), provider, ``ALL``."""

    succeeded: Table
    failed: Table
    webhook_failures: Table
    refunds: Table

    @classmethod
    def of(cls, ctx: AgentContext) -> EventTables:
        window = Sliding(timedelta(seconds=ctx.settings.alerts.window_seconds))

        def table(name: str) -> Table:
            return Table(
                f"alerts.{name}", window=window, kind=Kind.COUNT, store=ctx.tables, clock=ctx.clock.now
            )

        return cls(
            table("payments_succeeded"), table("payments_failed"), table("webhook_failures"), table("refunds")
        )


def thresholds(settings: AlertSettings) -> Thresholds:
    return Thresholds(
        window=timedelta(seconds=settings.window_seconds),
        failure_rate=settings.failure_rate_threshold,
        min_volume=settings.min_volume,
        webhook_failures=settings.webhook_failures,
        refund_spike=settings.refund_spike,
        dlq_growth=settings.dlq_growth,
        queue_depth=settings.queue_depth,
    )


@alerts.agent(topology.ALERTS_PAYMENTS, value_type=ObservedEvent, concurrency=4, replayable=True)
async def watch_failures(stream: Stream[ObservedEvent], ctx: AgentContext) -> None:
    """Count payment outcomes, webhook failures and refunds; alert on failure rates and spikes."""
    tables = EventTables.of(ctx)
    limits = thresholds(ctx.settings.alerts)
    async for event in stream:
        at = _event_time(event, ctx)
        fired = await count_and_check(tables, event.value, event.event_id, at=at, limits=limits)
        if fired:
            await _raise_once(ctx, event.event_id, fired)


async def count_and_check(
    tables: EventTables, observed: ObservedEvent, event_id: str, *, at: datetime, limits: Thresholds
) -> list[Alert]:
    """Count the event (once per event id), then check the rules its counts feed, read at ``at``."""
    measure = observed.measure
    if measure is Measure.WEBHOOK_FAILED:
        await tables.webhook_failures.add(observed.provider, event_id, at=at)
        failures = await tables.webhook_failures.get(observed.provider, at=at)
        return _fired(
            webhook_failures_alert(provider=observed.provider, failures=failures, limits=limits, at=at)
        )
    if measure is Measure.REFUND_CREATED:
        await tables.refunds.add(ALL, event_id, at=at)
        refunds = await tables.refunds.get(ALL, at=at)
        return _fired(refund_spike_alert(refunds=refunds, limits=limits, at=at))
    outcome = tables.succeeded if measure is Measure.PAYMENT_SUCCEEDED else tables.failed
    methods = tuple(dict.fromkeys((observed.method, ALL)))
    for method in methods:
        await outcome.add(method, event_id, at=at)
    # A success can fire too: it may bring a window of failures up to the minimum volume.
    return _fired(
        *[
            failure_rate_alert(
                method=method,
                succeeded=await tables.succeeded.get(method, at=at),
                failed=await tables.failed.get(method, at=at),
                limits=limits,
                at=at,
            )
            for method in methods
        ]
    )


@dataclass(frozen=True)
class QueueTables:
    """What the previous poll saw: each DLQ's depth, and that the poll happened, per poll interval."""

    dlq_depths: Table
    polls: Table

    @classmethod
    def of(cls, ctx: AgentContext, interval: timedelta) -> QueueTables:
        window = Tumbling(interval)
        return cls(
            Table("alerts.dlq_depths", window=window, kind=Kind.SUM, store=ctx.tables, clock=ctx.clock.now),
            Table(
                "alerts.queue_polls", window=window, kind=Kind.COUNT, store=ctx.tables, clock=ctx.clock.now
            ),
        )


@alerts.timer(seconds=POLL_TICK_SECONDS)
async def watch_queues(ctx: AgentContext) -> None:
    """Every ``ALERT_POLL_SECONDS``: alert on DLQs that grew since the previous poll and on overloaded
    work queues. The scheduler's lease runs each tick on one worker; the previous poll's depths are kept
    in tables (Redis), so whichever worker polls next compares with them."""
    interval = poll_interval(ctx.settings.alerts)
    now = ctx.clock.now()
    if not poll_due(now, interval=interval):
        return
    depths = await ctx.queues.depths()
    tables = QueueTables.of(ctx, interval)
    previous_at = now - interval
    previous = await _previous_dlq_depths(tables, depths, at=previous_at)
    await _remember(tables, depths, at=now, poll=f"poll:{int(now.timestamp() // interval.total_seconds())}")
    limits = thresholds(ctx.settings.alerts)
    fired = [
        *dlq_growth_alerts(previous=previous, current=depths, previous_at=previous_at, limits=limits, at=now),
        *queue_overload_alerts(depths=depths, limits=limits, at=now),
    ]
    if fired:
        async with ctx.unit_of_work() as uow:
            for alert in fired:
                await raise_alert(uow, alert, cooldown=_cooldown(ctx))


def poll_interval(settings: AlertSettings) -> timedelta:
    """``settings.poll_seconds``, at least one tick, in whole milliseconds (what a window accepts)."""
    return timedelta(milliseconds=round(max(settings.poll_seconds, POLL_TICK_SECONDS) * 1000))


def poll_due(now: datetime, *, interval: timedelta) -> bool:
    """True on the one tick whose last ``POLL_TICK_SECONDS`` hold a multiple of ``interval`` (epoch)."""
    seconds, every = now.timestamp(), interval.total_seconds()
    return math.floor(seconds / every) != math.floor((seconds - POLL_TICK_SECONDS) / every)


async def _previous_dlq_depths(
    tables: QueueTables, depths: Sequence[QueueDepth], *, at: datetime
) -> dict[str, int]:
    if not await tables.polls.get(_BROKER, at=at):
        return {}  # no poll then (first poll, or the fleet was down): no baseline to grow from
    # A DLQ declared since that poll reads 0 there: everything in it is new.
    return {
        depth.name: await tables.dlq_depths.get(depth.name, at=at)
        for depth in depths
        if is_dead_letter_queue(depth.name)
    }


async def _remember(tables: QueueTables, depths: Sequence[QueueDepth], *, at: datetime, poll: str) -> None:
    # The poll's id makes a second poll in one interval (a late tick) change nothing.
    for depth in depths:
        if is_dead_letter_queue(depth.name):
            await tables.dlq_depths.add(depth.name, poll, at=at, value=depth.messages)
    await tables.polls.add(_BROKER, poll, at=at)


async def _raise_once(ctx: AgentContext, event_id: str, fired: Iterable[Alert]) -> None:
    async with ctx.unit_of_work() as uow:
        if not await uow.inbox.claim(consumer=CONSUMER, event_id=event_id):
            return  # a redelivery or a replay: the tables are rebuilt, the alerts were raised already
        for alert in fired:
            await raise_alert(uow, alert, cooldown=_cooldown(ctx))


def _cooldown(ctx: AgentContext) -> timedelta:
    return timedelta(seconds=ctx.settings.alerts.cooldown_seconds)


def _event_time(event: Event[ObservedEvent], ctx: AgentContext) -> datetime:
    """When it happened: the payload's time, else the message's, else now (naive times are UTC)."""
    at = event.value.occurred_at or event.occurred_at or ctx.clock.now()
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _fired(*checked: Alert | None) -> list[Alert]:
    return [alert for alert in checked if alert is not None]

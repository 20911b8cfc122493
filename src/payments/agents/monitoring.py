"""The monitoring flow: business counters from the analytics facts, and gauges polled from the stores.

``analytics.events`` carries ``analytics.payment.created|success|failed``, ``analytics.refund.created``
and ``analytics.webhook.failure``. The ``count_facts`` agent turns them into Prometheus counters:
payments by status and method (success and failure rates are ratios of these in PromQL), fraud
verdicts and the rules that fired, refunds requested. Webhook failures are already timed by the
webhooks agent (``payments_webhook_processing_seconds``), so their facts are acknowledged uncounted.

Counting is at least once: a fact redelivered after a crash before its acknowledgement counts again.
Counters are per process and rates are read over minutes, so one such fact does not move a rate or an
alert; what must be exact (money, ledgers) is never read from a metric.

Two timers run in every worker (``every_worker``: each process reports on its own ``/metrics``) and
refresh gauges: the broker's ready messages and consumers per work queue and DLQ, and the open
reconciliation items per kind. Prometheus aggregates them across workers with ``max``.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.metrics import Metrics
from payments.pipeline.stream import Stream

logger = logging.getLogger(__name__)

monitoring = Blueprint("monitoring")

#: How often the gauges are refreshed: well inside Prometheus's 15 s scrape, cheap for the broker.
QUEUE_POLL_SECONDS: Final = 10.0
#: Open reconciliation items change nightly (and on admin runs); one count a minute is plenty.
RECONCILIATION_POLL_SECONDS: Final = 60.0
#: Payment facts and the status they count as.
PAYMENT_STATUSES: Final = {
    "analytics.payment.created": "created",
    "analytics.payment.success": "success",
    "analytics.payment.failed": "failed",
}
#: The method label of a payment that names none (as the alerts agent counts it).
UNKNOWN: Final = "unknown"
#: Values from a payload become label values only when they look like a name; anything else is
#: counted under "other", so a malformed fact cannot grow the number of series.
_LABEL_VALUE: Final = re.compile(r"[a-z0-9_]{1,48}")
OTHER: Final = "other"


class Risk(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    verdict: str = Field(max_length=32)
    rules: list[str] = Field(default_factory=list, max_length=64)


class AnalyticsFact(BaseModel):
    """The few fields the counters read; every other field is ignored.

    Payment facts name their routing key in ``type`` (a message back from a retry tier carries its
    queue's name as routing key instead); a refund fact has a ``refundId``.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    type: str | None = Field(default=None, max_length=64)
    payment_method: str | None = Field(default=None, alias="paymentMethod", max_length=64)
    refund_id: str | None = Field(default=None, alias="refundId", max_length=128)
    risk: Risk | None = None


@monitoring.agent(topology.ANALYTICS_EVENTS, value_type=AnalyticsFact)
async def count_facts(stream: Stream[AnalyticsFact], ctx: AgentContext) -> None:
    """Count each analytics fact into the business counters of ``/metrics``."""
    async for event in stream:
        count(ctx.metrics, event.value)


def count(metrics: Metrics, fact: AnalyticsFact) -> None:
    """Add one fact to the counters it belongs to (none, for facts counted elsewhere)."""
    status = PAYMENT_STATUSES.get(fact.type or "")
    if status is not None:
        metrics.payments.labels(status, label_value(fact.payment_method or UNKNOWN)).inc()
        if status == "created" and fact.risk is not None:
            _count_risk(metrics, fact.risk)
    elif fact.refund_id is not None:
        metrics.refunds_requested.inc()


def _count_risk(metrics: Metrics, risk: Risk) -> None:
    metrics.fraud_verdicts.labels(label_value(risk.verdict)).inc()
    for rule in risk.rules:
        metrics.fraud_signals.labels(label_value(rule)).inc()


def label_value(text: str) -> str:
    """``text`` lowercased when it is a plain name, else ``OTHER``."""
    lowered = text.lower()
    return lowered if _LABEL_VALUE.fullmatch(lowered) else OTHER


@monitoring.timer(seconds=QUEUE_POLL_SECONDS, every_worker=True)
async def poll_queues(ctx: AgentContext) -> None:
    """Refresh ``payments_queue_messages`` and ``payments_queue_consumers`` from the broker."""
    for depth in await ctx.queues.depths():
        ctx.metrics.queue_messages.labels(depth.name).set(depth.messages)
        ctx.metrics.queue_consumers.labels(depth.name).set(depth.consumers)


@monitoring.timer(seconds=RECONCILIATION_POLL_SECONDS, every_worker=True)
async def poll_reconciliation(ctx: AgentContext) -> None:
    """Refresh ``payments_reconciliation_open_items`` from the database."""
    async with ctx.unit_of_work() as uow:
        counts = await uow.reconciliation.open_counts()
    for kind, open_items in counts.items():
        ctx.metrics.reconciliation_open_items.labels(kind.value).set(open_items)

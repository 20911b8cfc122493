"""Scheduled reconciliation runs: every night at 02:00 IST, the last few whole days (IST).

Crontabs are read in UTC (``pipeline/scheduler.py`` walks croniter from a UTC time), so 02:00 IST is
``30 20 * * *``: 20:30 UTC of the day before. The run covers ``[today 00:00 IST - lookback_days,
today 00:00 IST)``, so every day is reconciled ``lookback_days`` times while late settlements arrive,
and what later evidence explains is marked resolved. The scheduler's Redis lease lets one worker of
the fleet fire each night; the run's range lock also refuses a CLI or admin run of the same range.

The streaming matcher of issue 9 §4 lives in ``agents/reconciliation.py``; this module holds only the
scheduled batch run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

from payments.agents.payments import payment_service
from payments.domain.reconciliation.service import (
    TRIGGER_SCHEDULE,
    ReconciliationService,
    RunInProgress,
    scheduled_range,
)
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext

logger = logging.getLogger(__name__)

reconciliation_runs = Blueprint("reconciliation_runs")

#: 02:00 IST (UTC+05:30) as the scheduler reads crontabs: in UTC.
NIGHTLY: Final = "30 20 * * *"


def reconciliation_service(ctx: AgentContext) -> ReconciliationService:
    """The reconciliation service on the agent context, with the SLA and grace from the settings."""
    settings = ctx.settings.reconciliation
    return ReconciliationService(
        unit_of_work=ctx.unit_of_work,
        gateway=ctx.gateway,
        payments=payment_service(ctx),
        clock=ctx.clock,
        settlement_sla=timedelta(hours=settings.settlement_sla_hours),
        webhook_grace=timedelta(minutes=settings.webhook_grace_minutes),
    )


@reconciliation_runs.crontab(NIGHTLY)
async def reconcile_recent_days(ctx: AgentContext) -> None:
    """Nightly at 02:00 IST: reconcile the last ``lookback_days`` whole IST days with Cashfree."""
    start, end = scheduled_range(ctx.clock.now(), lookback_days=ctx.settings.reconciliation.lookback_days)
    try:
        run = await reconciliation_service(ctx).run(start, end, trigger=TRIGGER_SCHEDULE)
    except RunInProgress:
        # Someone (the CLI, an admin) is reconciling this very range right now: their run counts.
        logger.info("scheduled reconciliation of [%s, %s) skipped: a run is in progress", start, end)
        return
    logger.info("scheduled reconciliation %s: %s", run.run_id, dict(run.counts))
    for kind, found in run.counts.items():
        ctx.metrics.reconciliation_mismatches.labels(kind).inc(found)

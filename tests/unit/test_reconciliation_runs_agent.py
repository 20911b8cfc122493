"""The nightly reconciliation job: its schedule and the range it runs."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from payments.agents.reconciliation_runs import NIGHTLY, reconcile_recent_days, reconciliation_runs
from payments.domain.reconciliation.model import RunStatus
from payments.domain.reconciliation.service import IST
from tests.fakes.context import fake_context
from tests.fakes.gateway import FixedClock
from tests.fakes.storage import InMemoryStore


def test_the_job_fires_at_two_in_the_morning_ist_read_as_utc_by_the_scheduler():
    [spec] = reconciliation_runs.crontabs

    firing = croniter(spec.expression, datetime(2026, 11, 26, 12, 0, tzinfo=UTC)).get_next(datetime)

    assert spec.expression == NIGHTLY
    assert spec.name == "reconciliation_runs.reconcile_recent_days"
    assert firing.astimezone(IST) == datetime(2026, 11, 27, 2, 0, tzinfo=IST)


async def test_the_job_reconciles_the_lookback_days_before_today_ist():
    store = InMemoryStore()
    # The firing: 02:00 IST on the 27th; the default lookback is four days (a day past the 72 h SLA).
    context = fake_context(store=store, clock=FixedClock(datetime(2026, 11, 26, 20, 30, tzinfo=UTC)))

    await reconcile_recent_days(context)

    async with store.unit_of_work() as uow:
        [run] = await uow.reconciliation.runs(10)
    assert (run.start, run.end) == (datetime(2026, 11, 23, tzinfo=IST), datetime(2026, 11, 27, tzinfo=IST))
    assert (run.trigger, run.status) == ("schedule", RunStatus.SUCCEEDED)

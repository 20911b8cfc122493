"""Timers and crontabs: one run per slot across workers that share a lease store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry

from payments.pipeline import metrics as metrics_module
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.scheduler import Scheduler
from payments.pipeline.settings import load_settings
from tests.fakes.context import fake_context
from tests.waiting import eventually


class InMemoryLease:
    """SET NX semantics: the first owner of a key wins; records who won what."""

    def __init__(self) -> None:
        self.owners: dict[str, str] = {}
        self.unavailable = False

    async def try_acquire(self, key: str, *, owner: str, ttl_seconds: float) -> bool:
        if self.unavailable:
            raise ConnectionError("redis down")
        assert ttl_seconds >= 60
        return self.owners.setdefault(key, owner) == owner


def context() -> AgentContext:
    return fake_context(metrics=metrics_module.create(CollectorRegistry()))


async def test_two_workers_run_each_timer_slot_exactly_once():
    lease, stop = InMemoryLease(), asyncio.Event()
    runs: list[float] = []
    blueprint = Blueprint("jobs")

    @blueprint.timer(seconds=0.02)
    async def tick(ctx: AgentContext) -> None:
        runs.append(1)

    ctx = context()
    workers = [
        Scheduler(context=ctx, lease=lease, owner=name, metrics=ctx.metrics, stop=stop) for name in ("a", "b")
    ]
    tasks = [asyncio.create_task(worker.run_timer(blueprint.timers[0])) for worker in workers]
    await eventually(lambda: len(runs) >= 10, what="ten timer runs")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    assert len(runs) == len(lease.owners), "a slot ran twice or a run had no lease"
    assert all(key.startswith("lease:schedule:jobs.tick:") for key in lease.owners)


async def test_a_failing_job_is_counted_and_the_timer_keeps_going():
    lease, stop = InMemoryLease(), asyncio.Event()
    attempts = 0
    blueprint = Blueprint("jobs")

    @blueprint.timer(seconds=0.01)
    async def flaky(ctx: AgentContext) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("boom")

    ctx = context()
    scheduler = Scheduler(context=ctx, lease=lease, owner="a", metrics=ctx.metrics, stop=stop)
    task = asyncio.create_task(scheduler.run_timer(blueprint.timers[0]))
    await eventually(lambda: attempts >= 3, what="three attempts")
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    failed = ctx.metrics.scheduled_runs.labels("jobs.flaky", "failed")._value.get()
    assert failed == attempts


async def test_without_a_lease_store_a_slot_is_skipped_not_run():
    lease, stop = InMemoryLease(), asyncio.Event()
    lease.unavailable = True
    ran = False
    blueprint = Blueprint("jobs")

    @blueprint.timer(seconds=0.01)
    async def guarded(ctx: AgentContext) -> None:
        nonlocal ran
        ran = True

    ctx = context()
    scheduler = Scheduler(context=ctx, lease=lease, owner="a", metrics=ctx.metrics, stop=stop)
    task = asyncio.create_task(scheduler.run_timer(blueprint.timers[0]))
    skipped = ctx.metrics.scheduled_runs.labels("jobs.guarded", "skipped")
    await eventually(lambda: skipped._value.get() >= 2, what="two skipped slots")
    stop.set()
    await asyncio.wait_for(task, timeout=5)

    assert not ran


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 11, 26, 1, 30, tzinfo=UTC), datetime(2026, 11, 26, 2, 0, tzinfo=UTC)),
        (datetime(2026, 11, 26, 2, 0, 1, tzinfo=UTC), datetime(2026, 11, 27, 2, 0, tzinfo=UTC)),
    ],
)
async def test_a_crontab_fires_at_its_next_scheduled_minute(now, expected):
    lease, stop = InMemoryLease(), asyncio.Event()
    blueprint = Blueprint("jobs")
    # The first reading picks the firing; later readings stand 10 ms before it, so the wait is short.
    readings = iter([now.timestamp()])

    def wall_clock() -> float:
        return next(readings, expected.timestamp() - 0.01)

    @blueprint.crontab("0 2 * * *")
    async def nightly(ctx: AgentContext) -> None:
        stop.set()

    ctx = context()
    scheduler = Scheduler(
        context=ctx, lease=lease, owner="a", metrics=ctx.metrics, stop=stop, wall_clock=wall_clock
    )
    await asyncio.wait_for(scheduler.run_crontab(blueprint.crontabs[0]), timeout=5)

    assert list(lease.owners) == [f"lease:schedule:jobs.nightly:{int(expected.timestamp())}"]


async def test_an_every_worker_timer_runs_each_slot_in_every_worker_without_a_lease():
    lease, stop = InMemoryLease(), asyncio.Event()
    lease.unavailable = True  # taking no lease, it runs even when Redis cannot grant one
    runs: dict[str, int] = {"a": 0, "b": 0}
    blueprint = Blueprint("jobs")

    @blueprint.timer(seconds=0.01, every_worker=True)
    async def refresh(ctx: AgentContext) -> None:
        runs[ctx.settings.app.service_name] += 1

    tasks = []
    for name in runs:
        ctx = fake_context(
            metrics=metrics_module.create(CollectorRegistry()), settings=load_settings({"SERVICE_NAME": name})
        )
        scheduler = Scheduler(context=ctx, lease=lease, owner=name, metrics=ctx.metrics, stop=stop)
        tasks.append(asyncio.create_task(scheduler.run_timer(blueprint.timers[0])))
    await eventually(lambda: min(runs.values()) >= 3, what="three runs in each worker")
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)

    assert lease.owners == {}

"""Timers and crontabs: every worker schedules every job; a Redis lease lets one of them run each firing.

(A timer registered with ``every_worker=True`` takes no lease: each worker runs each of its slots.)

Firings are numbered by wall-clock slot (a timer's slot is ``floor(t / interval)``, a crontab's is the
firing's epoch second), so every worker computes the same slot and the lease key
``lease:schedule:{job}:{slot}`` is won by exactly one. The lease simply expires; nobody releases it,
so a worker that starts late cannot run a slot another worker already ran.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from croniter import croniter

from payments.bridges.redis.keys import schedule_lease
from payments.pipeline.blueprint import CrontabSpec, ScheduledFunction, TimerSpec
from payments.pipeline.context import AgentContext
from payments.pipeline.metrics import Metrics
from payments.pipeline.tracing import TraceContext, use_trace

logger = logging.getLogger(__name__)

#: A lease outlives its firing comfortably, so clock skew between workers cannot re-run a slot.
_MIN_LEASE_SECONDS = 60.0


class Lease(Protocol):
    async def try_acquire(self, key: str, *, owner: str, ttl_seconds: float) -> bool: ...


class Scheduler:
    """Runs one worker's copy of every timer and crontab until ``stop`` is set."""

    def __init__(
        self,
        *,
        context: AgentContext,
        lease: Lease,
        owner: str,
        metrics: Metrics,
        stop: asyncio.Event,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._context = context
        self._lease = lease
        self._owner = owner
        self._metrics = metrics
        self._stop = stop
        self._now = wall_clock

    async def run_timer(self, spec: TimerSpec) -> None:
        while not self._stop.is_set():
            slot = int(self._now() // spec.seconds) + 1
            if await self._sleep_until(slot * spec.seconds):
                return
            if spec.every_worker:
                await self._run(spec.name, spec.function, slot)
            else:
                await self._fire(
                    spec.name, spec.function, slot, ttl=max(_MIN_LEASE_SECONDS, spec.seconds * 2)
                )

    async def run_crontab(self, spec: CrontabSpec) -> None:
        while not self._stop.is_set():
            start = datetime.fromtimestamp(self._now(), UTC)
            firing = croniter(spec.expression, start).get_next(float)
            if await self._sleep_until(firing):
                return
            await self._fire(spec.name, spec.function, int(firing), ttl=_MIN_LEASE_SECONDS * 10)

    async def _sleep_until(self, moment: float) -> bool:
        """Wait until ``moment`` (epoch seconds); True if ``stop`` was set first."""
        delay = moment - self._now()
        if delay <= 0:
            return self._stop.is_set()
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    async def _fire(self, job: str, function: ScheduledFunction, slot: int, *, ttl: float) -> None:
        try:
            won = await self._lease.try_acquire(schedule_lease(job, slot), owner=self._owner, ttl_seconds=ttl)
        except Exception as error:
            # Without Redis nobody can prove they own the slot; skipping is safer than running twice.
            logger.warning("scheduled job %s skipped slot %d: lease unavailable (%s)", job, slot, error)
            self._metrics.scheduled_runs.labels(job, "skipped").inc()
            return
        if won:
            await self._run(job, function, slot)

    async def _run(self, job: str, function: ScheduledFunction, slot: int) -> None:
        with use_trace(TraceContext.new()):
            try:
                await function(self._context)
            except Exception:
                logger.exception("scheduled job %s failed (slot %d)", job, slot)
                self._metrics.scheduled_runs.labels(job, "failed").inc()
                return
        self._metrics.scheduled_runs.labels(job, "ok").inc()

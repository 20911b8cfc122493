"""The App collects blueprints; a Worker runs a selection of them on live connections.

``payments worker --agents fraud,alerts`` runs only those flows (a blueprint name or an agent's full
name); many workers may run the same agents at once as competing consumers. Shutdown is graceful:
on ``stop`` the streams hand out no new message, agents finish the one they hold (it is acked), the
outbox is drained, and only what outlives the grace period is cancelled (its message is redelivered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from payments.pipeline.blueprint import AgentSpec, Blueprint, CrontabSpec, TimerSpec
from payments.pipeline.context import AgentContext
from payments.pipeline.metrics import Metrics
from payments.pipeline.outbox_relay import OutboxRelay
from payments.pipeline.publishing import Publisher
from payments.pipeline.runtime import ConsumerFactory, FailureRouter, supervise_agent
from payments.pipeline.scheduler import Lease, Scheduler

logger = logging.getLogger(__name__)


class UnknownAgent(ValueError):
    """A name given to ``--agents`` matches no blueprint or agent."""


@dataclass(frozen=True)
class App:
    """Every flow of the product, as registered on its blueprint."""

    blueprints: tuple[Blueprint, ...]

    def select(self, names: Iterable[str] | None = None) -> App:
        """The blueprints (or single agents) named; all of them when ``names`` is None."""
        if names is None:
            return self
        wanted = set(names)
        known = {bp.name for bp in self.blueprints} | {
            spec.name for bp in self.blueprints for spec in _jobs(bp)
        }
        if unknown := wanted - known:
            raise UnknownAgent(
                f"unknown agents: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        return App(tuple(_narrow(bp, wanted) for bp in self.blueprints if _mentions(bp, wanted)))

    @property
    def agents(self) -> list[AgentSpec[Any]]:
        return [spec for bp in self.blueprints for spec in bp.agents]

    @property
    def timers(self) -> list[TimerSpec]:
        return [spec for bp in self.blueprints for spec in bp.timers]

    @property
    def crontabs(self) -> list[CrontabSpec]:
        return [spec for bp in self.blueprints for spec in bp.crontabs]


def _jobs(bp: Blueprint) -> list[AgentSpec[Any] | TimerSpec | CrontabSpec]:
    return [*bp.agents, *bp.timers, *bp.crontabs]


def _mentions(bp: Blueprint, wanted: set[str]) -> bool:
    return bp.name in wanted or any(spec.name in wanted for spec in _jobs(bp))


def _narrow(bp: Blueprint, wanted: set[str]) -> Blueprint:
    if bp.name in wanted:
        return bp
    return Blueprint(
        bp.name,
        [spec for spec in bp.agents if spec.name in wanted],
        [spec for spec in bp.timers if spec.name in wanted],
        [spec for spec in bp.crontabs if spec.name in wanted],
    )


@dataclass(frozen=True, kw_only=True)
class Worker:
    """Runs an App's agents, timers and crontabs, plus an outbox relay, until stopped."""

    app: App
    context: AgentContext
    consumers: ConsumerFactory
    publisher: Publisher
    lease: Lease
    relay: OutboxRelay | None
    metrics: Metrics
    owner: str
    delay_scale: float
    grace_seconds: float

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set or a component fails to start; then shut down gracefully."""
        tasks = [asyncio.create_task(job, name=name) for name, job in self._jobs(stop)]
        stopped = asyncio.create_task(stop.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
            failed = [
                task for task in done if task is not stopped and not task.cancelled() and task.exception()
            ]
            stop.set()
            await self._finish(tasks)
            if self.relay is not None and not failed:
                await self._drain_outbox()
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
        finally:
            stopped.cancel()

    def _jobs(self, stop: asyncio.Event) -> Sequence[tuple[str, Coroutine[Any, Any, None]]]:
        scheduler = Scheduler(
            context=self.context, lease=self.lease, owner=self.owner, metrics=self.metrics, stop=stop
        )
        jobs: list[tuple[str, Coroutine[Any, Any, None]]] = []
        for spec in self.app.agents:
            for instance in range(spec.concurrency):
                jobs.append((f"{spec.name}#{instance}", self._agent(spec, stop)))
        jobs += [(spec.name, scheduler.run_timer(spec)) for spec in self.app.timers]
        jobs += [(spec.name, scheduler.run_crontab(spec)) for spec in self.app.crontabs]
        if self.relay is not None:
            jobs.append(("outbox-relay", self.relay.run(stop)))
        return jobs

    def _agent(self, spec: AgentSpec[Any], stop: asyncio.Event) -> Coroutine[Any, Any, None]:
        router = FailureRouter(
            self.publisher,
            queue=spec.queue,
            agent=spec.name,
            delay_scale=self.delay_scale,
            metrics=self.metrics,
        )
        return supervise_agent(
            spec,
            context=self.context,
            consumer=self.consumers(spec.queue.name),
            router=router,
            metrics=self.metrics,
            stop=stop,
        )

    async def _finish(self, tasks: list[asyncio.Task[None]]) -> None:
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.grace_seconds)
        for task in pending:
            logger.warning(
                "%s did not finish within %.0fs; cancelling it", task.get_name(), self.grace_seconds
            )
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain_outbox(self) -> None:
        assert self.relay is not None
        try:
            drained = await asyncio.wait_for(self.relay.drain(), timeout=self.grace_seconds)
        except Exception as error:
            logger.warning("outbox not drained at shutdown (another worker will publish it): %s", error)
            return
        if drained:
            logger.info("published %d outbox events on the way out", drained)

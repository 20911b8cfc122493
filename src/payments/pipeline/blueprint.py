"""Blueprints: where a flow's agents, timers and crontabs are registered (Faust's programming model).

A module in ``agents/`` creates one ``Blueprint`` and decorates plain async functions with it;
``pipeline/bootstrap.py`` collects the blueprints into an ``App``. Registering runs nothing: the
worker starts what it is asked to run.

    refunds = Blueprint("refunds")

    @refunds.agent(topology.REFUND_COMMANDS, value_type=RequestRefund, concurrency=4)
    async def request_refunds(stream: Stream[RequestRefund], ctx: AgentContext) -> None:
        \"\"\"Open a refund for each command.\"\"\"
        async for event in stream:
            ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from croniter import croniter
from pydantic import TypeAdapter

from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Stream
from payments.pipeline.topology import QueueSpec

T = TypeVar("T")

AgentFunction = Callable[[Stream[T], AgentContext], Awaitable[None]]
ScheduledFunction = Callable[[AgentContext], Awaitable[None]]


@dataclass(frozen=True)
class AgentSpec(Generic[T]):
    """An agent: a function over the typed stream of one work queue, run ``concurrency`` times."""

    name: str
    queue: QueueSpec
    #: A type, or a pydantic ``TypeAdapter`` for what is not a class (a discriminated union).
    value_type: type[T] | TypeAdapter[T]
    concurrency: int
    function: AgentFunction[T]
    #: Safe to feed old events again (``payments replay``): its effects are tables and inbox-guarded
    #: writes only. An agent that calls the outside world (a payment gateway) must stay False.
    replayable: bool = False

    @property
    def help(self) -> str:
        return (self.function.__doc__ or "").strip()


@dataclass(frozen=True)
class TimerSpec:
    """A job run every ``seconds``; each slot runs once across the fleet, or on every worker."""

    name: str
    seconds: float
    function: ScheduledFunction
    #: Run each slot in every worker process (no lease): for jobs that refresh a process's own state,
    #: such as the gauges its ``/metrics`` reports.
    every_worker: bool = False


@dataclass(frozen=True)
class CrontabSpec:
    """A job run on a cron schedule (UTC); each firing runs once across the fleet."""

    name: str
    expression: str
    function: ScheduledFunction


@dataclass
class Blueprint:
    """The agents and scheduled jobs of one flow."""

    name: str
    agents: list[AgentSpec[Any]] = field(default_factory=list)
    timers: list[TimerSpec] = field(default_factory=list)
    crontabs: list[CrontabSpec] = field(default_factory=list)

    def agent(
        self,
        queue: QueueSpec,
        *,
        value_type: type[T] | TypeAdapter[T],
        concurrency: int = 1,
        replayable: bool = False,
    ) -> Callable[[AgentFunction[T]], AgentFunction[T]]:
        """Register an agent consuming ``queue``; each message body is validated as ``value_type``.

        ``replayable=True`` lets ``payments replay`` feed it events from the event log again; only for
        agents whose effects are idempotent per event id and touch nothing outside our own stores.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")

        def register(function: AgentFunction[T]) -> AgentFunction[T]:
            name = f"{self.name}.{function.__name__}"
            self.agents.append(AgentSpec(name, queue, value_type, concurrency, function, replayable))
            return function

        return register

    def timer(
        self, *, seconds: float, every_worker: bool = False
    ) -> Callable[[ScheduledFunction], ScheduledFunction]:
        """Register a job that runs every ``seconds`` (slots aligned to the epoch), once per slot across
        the fleet, or in each worker with ``every_worker=True``."""
        if seconds <= 0:
            raise ValueError("a timer interval must be positive")

        def register(function: ScheduledFunction) -> ScheduledFunction:
            name = f"{self.name}.{function.__name__}"
            self.timers.append(TimerSpec(name, seconds, function, every_worker=every_worker))
            return function

        return register

    def crontab(self, expression: str) -> Callable[[ScheduledFunction], ScheduledFunction]:
        """Register a job on a cron expression, e.g. ``"0 2 * * *"`` (UTC)."""
        if not croniter.is_valid(expression):
            raise ValueError(f"not a cron expression: {expression!r}")

        def register(function: ScheduledFunction) -> ScheduledFunction:
            self.crontabs.append(CrontabSpec(f"{self.name}.{function.__name__}", expression, function))
            return function

        return register

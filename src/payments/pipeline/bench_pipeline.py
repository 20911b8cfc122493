"""The pipeline phases of ``payments bench``: creates, the maximum rate, and end-to-end latency at half
of it, with one and then two workers (issue 13).

The real pipeline runs as processes (``payments smtp-sink``, ``sandbox``, ``web`` and ``worker``s) on a
vhost of the run's own, the environment's PostgreSQL (which ``run_bench`` migrates first, as
``payments demo`` does) and Redis. For each worker count, with workers added to reach it:

1. **create**: ``2 x payments`` payments through ``POST /api/v1/payments/create`` (web -> worker ->
   sandbox), timed by the load generator; then each is paid at the sandbox, so that the gateway holds a
   successful attempt when the worker, told by a webhook, asks it (a webhook is a hint, never proof).
   The sandbox's own webhooks are withheld (its ``withhold_webhooks`` fault), so the bench alone
   decides when each payment's webhook is sent.
2. **maximum rate**: one PAYMENT_SUCCESS webhook for each of the first half, as fast as possible; the
   rate is payments / (last SUCCESS written - first webhook sent), both read as wall clock, the first
   from the load generator, the last from ``payments.updated_at``. The workers' /metrics are scraped
   before and after (once every email is sent too), for each agent's messages per second.
3. **half rate**: the other half, open loop at half the rate to email (the end of the path); per
   payment t0 (its webhook answered 200), t1 (``payments.updated_at`` of SUCCESS) and t2
   (``emails.sent_at`` of its payment_success email, found through the outbox event that asked for it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import aiohttp

from payments.bridges.rabbitmq.inspection import queue_depths
from payments.pipeline import bootstrap
from payments.pipeline.bench_machine import describe_machine, process_usage, used_between
from payments.pipeline.bench_pipeline_observe import (
    drain,
    end_to_end_latencies,
    scrape,
)
from payments.pipeline.bench_pipeline_report import (
    CreateResult,
    MaxRate,
    OpenLoop,
    PhaseUsage,
    PipelineMethod,
    PipelineRun,
    WebhookLoad,
    agent_throughput,
)
from payments.pipeline.bench_processes import (
    HOST,
    LOG_DIRECTORY,
    POLL_SECONDS,
    START_DEADLINE_SECONDS,
    BenchError,
    child_environment,
    finish,
    free_port,
    fresh_vhost,
    read_line,
    spawn,
    wait_healthy,
    wait_listening,
    with_amqp_url,
)
from payments.pipeline.bench_report import Machine
from payments.pipeline.bench_stats import LatencySummary, ProcessUsage
from payments.pipeline.settings import Settings
from payments.pipeline.topology import PAYMENT_COMMANDS
from payments.web.auth import mint_token
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH

#: Creates in flight: enough to keep two workers' payment agents (8 each) busy.
CREATE_CONCURRENCY: Final = 16
#: Webhooks in flight in the maximum-rate phase, as for ingest.
WEBHOOK_CONCURRENCY: Final = 32
#: Retry tiers at 1/100 (a first retry after 0.3 s, not 30 s): a transient failure then shows as a
#: tail in the numbers instead of stalling the run for minutes.
RETRY_DELAY_SCALE: Final = "0.01"
#: How long a load generator may take for one phase, beyond which it counts as hung.
_LOAD_DEADLINE_SECONDS: Final = 600.0
#: The largest worker count: more would only measure two cores fighting.
MAX_WORKERS: Final = 4


@dataclass(frozen=True)
class PipelineOptions:
    """The pipeline part of ``payments bench``'s command line."""

    workers: tuple[int, ...] = (1, 2)
    #: Payments per webhook phase; each worker count creates twice as many.
    payments: int = 300
    users: int = 20

    def method(self) -> PipelineMethod:
        return PipelineMethod(
            workers=self.workers,
            payments=self.payments,
            users=self.users,
            create_concurrency=CREATE_CONCURRENCY,
            webhook_concurrency=WEBHOOK_CONCURRENCY,
            retry_delay_scale=float(RETRY_DELAY_SCALE),
        )


def pipeline_problems(options: PipelineOptions) -> str | None:
    """Why ``options`` cannot be run, or None."""
    if not options.workers or list(options.workers) != sorted(set(options.workers)):
        return "--workers must be distinct counts in ascending order, e.g. 1,2"
    if not all(1 <= count <= MAX_WORKERS for count in options.workers):
        return f"--workers must be counts from 1 to {MAX_WORKERS}"
    if options.payments < 2 or options.users < 1:
        return "--payments must be at least 2 and --users at least 1"
    return None


@dataclass
class _Stack:
    """The running pipeline and what the phases need to drive it."""

    run_id: str
    options: PipelineOptions
    settings: Settings
    resources: bootstrap.Resources
    environ: dict[str, str]
    exits: AsyncExitStack
    web_url: str
    sandbox_url: str
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    metrics_ports: list[int] = field(default_factory=list)

    @property
    def workers(self) -> int:
        return len(self.metrics_ports)

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}


async def run_pipeline(
    settings: Settings, options: PipelineOptions, *, run_id: str, environ: Mapping[str, str]
) -> tuple[list[PipelineRun], Machine]:
    """Measure the pipeline with each worker count in ``options.workers``; raises ``BenchError``."""
    vhost = f"payments-bench-{run_id}-pipeline"
    async with fresh_vhost(settings.rabbitmq.url.get_secret_value(), vhost) as amqp_url:
        on_vhost = with_amqp_url(settings, amqp_url)
        await bootstrap.run_topology(on_vhost)
        async with (
            bootstrap.open_resources(on_vhost, process="bench") as resources,
            _running(run_id, options, on_vhost, resources, environ, amqp_url) as stack,
        ):
            runs = []
            for count in options.workers:
                while stack.workers < count:
                    await _add_worker(stack)
                runs.append(await _measure(stack))
            return runs, await describe_machine(resources)


@asynccontextmanager
async def _running(  # noqa: PLR0917 - private, called once, each argument named at the call
    run_id: str,
    options: PipelineOptions,
    settings: Settings,
    resources: bootstrap.Resources,
    environ: Mapping[str, str],
    amqp_url: str,
) -> AsyncIterator[_Stack]:
    """The SMTP sink, the sandbox (its webhooks withheld) and ``payments web``; workers come later."""
    web_port, sandbox_port, smtp_port = free_port(), free_port(), free_port()
    web_url, sandbox_url = f"http://{HOST}:{web_port}", f"http://{HOST}:{sandbox_port}"
    env = _environment(environ, amqp_url, web_port=web_port, sandbox_port=sandbox_port, smtp_port=smtp_port)
    mail = LOG_DIRECTORY / f"mail-{run_id}"
    async with AsyncExitStack() as exits:
        stack = _Stack(run_id, options, settings, resources, env, exits, web_url, sandbox_url)
        sink_argv = ["-m", "payments", "smtp-sink", "--directory", str(mail)]
        stack.processes["smtp-sink"] = await exits.enter_async_context(spawn("smtp-sink", sink_argv, env=env))
        stack.processes["sandbox"] = await exits.enter_async_context(
            spawn("sandbox", ["-m", "payments", "sandbox"], env=env)
        )
        stack.processes["web"] = await exits.enter_async_context(
            spawn("web", ["-m", "payments", "web"], env=env)
        )
        await wait_listening(smtp_port, stack.processes["smtp-sink"], "smtp-sink")
        await wait_healthy(f"{sandbox_url}/_sandbox/clock", stack.processes["sandbox"], "sandbox")
        await wait_healthy(f"{web_url}/health", stack.processes["web"], "web")
        await _withhold_sandbox_webhooks(sandbox_url)
        try:
            yield stack
        finally:
            await exits.aclose()
            # The emails table is the record; the sink's copies are only for looking at during a run.
            shutil.rmtree(mail, ignore_errors=True)


def _environment(
    environ: Mapping[str, str], amqp_url: str, *, web_port: int, sandbox_port: int, smtp_port: int
) -> dict[str, str]:
    web_url = f"http://{HOST}:{web_port}"
    return child_environment(
        environ,
        RABBITMQ_URL=amqp_url,
        HOST=HOST,
        PORT=str(web_port),
        PUBLIC_BASE_URL=web_url,
        LOG_LEVEL="WARNING",
        SMTP_URL=f"smtp://{HOST}:{smtp_port}",
        SANDBOX_HOST=HOST,
        SANDBOX_PORT=str(sandbox_port),
        SANDBOX_WEBHOOK_URL=f"{web_url}{CASHFREE_WEBHOOK_PATH}",
        SANDBOX_ENFORCE_RATE_LIMITS="false",
        CASHFREE_BASE_URL=f"http://{HOST}:{sandbox_port}/pg",
        # As the e2e tests run: the bench's few users from one address would trip the velocity rules
        # and the per-user limits, which would then measure refusals rather than payments.
        FRAUD_RULES="{}",
        RATE_LIMITS_ENABLED="false",
        RETRY_DELAY_SCALE=RETRY_DELAY_SCALE,
        COMMAND_REPLY_TIMEOUT_SECONDS="30",
        PROMETHEUS_ENABLED="true",
        WORKER_METRICS_PORT="0",
        WEBHOOK_ALLOWED_SOURCES="",
        WEBHOOK_DEDUP_TTL_SECONDS="60",
    )


async def _withhold_sandbox_webhooks(sandbox_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{sandbox_url}/_sandbox/faults", json={"withhold_webhooks": True}) as response,
    ):
        if response.status != 200:
            raise BenchError(f"the sandbox refused to withhold its webhooks: {response.status}")


async def _add_worker(stack: _Stack) -> None:
    """One more ``payments worker``, with /metrics on a port of its own, consuming the commands."""
    port, name = free_port(), f"worker-{stack.workers + 1}"
    env = {**stack.environ, "WORKER_METRICS_PORT": str(port)}
    stack.processes[name] = await stack.exits.enter_async_context(
        spawn(name, ["-m", "payments", "worker"], env=env)
    )
    await wait_healthy(f"http://{HOST}:{port}/health", stack.processes[name], name)
    stack.metrics_ports.append(port)
    await _wait_consumers(stack, name)


async def _wait_consumers(stack: _Stack, name: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_DEADLINE_SECONDS
    while loop.time() < deadline:
        [depth] = await queue_depths(stack.resources.amqp, [PAYMENT_COMMANDS.name])
        if depth.consumers >= stack.workers:
            return
        await asyncio.sleep(POLL_SECONDS)  # polling a process we do not control, under a deadline
    raise BenchError(f"{name} did not consume {PAYMENT_COMMANDS.name}; see {LOG_DIRECTORY}/{name}.log")


class _Readings:
    """CPU and memory of every process of the stack from the start of a phase."""

    def __init__(self, stack: _Stack) -> None:
        self._pids = stack.pids()
        self._before = {name: process_usage(pid) for name, pid in self._pids.items()}
        self._started = time.monotonic()

    def done(self, phase: str, load_generator: ProcessUsage) -> PhaseUsage:
        used = {
            name: used_between(self._before[name], process_usage(pid)) for name, pid in self._pids.items()
        }
        return PhaseUsage(
            phase=phase,
            seconds=time.monotonic() - self._started,
            processes={**used, "load generator": load_generator},
        )


async def _measure(stack: _Stack) -> PipelineRun:
    """The three phases with the workers now running."""
    label = f"{stack.run_id}-w{stack.workers}"
    readings = _Readings(stack)
    create, orders = await _create(stack, label)
    create_usage = readings.done("create", create.usage)
    half = len(orders) // 2
    maximum, max_usage = await _maximum_rate(stack, label, orders[:half])
    # The end-to-end path ends with the email, the slower of the two ends: half of its pace, not half of
    # the pace to final, or the half-rate phase would measure a queue in front of the email agent.
    at_half, half_usage = await _half_rate(stack, label, orders[half:], rate=maximum.emailed_rate / 2)
    return PipelineRun(
        workers=stack.workers,
        create=create,
        maximum=maximum,
        half=at_half,
        usage=(create_usage, max_usage, half_usage),
    )


async def _create(stack: _Stack, label: str) -> tuple[CreateResult, list[str]]:
    settings, options = stack.settings, stack.options
    argv = [
        *("-m", "payments.pipeline.bench_pipeline_load", "create"),
        *("--api", stack.web_url, "--cashfree", f"{stack.sandbox_url}/pg"),
        *("--payments", str(2 * options.payments), "--concurrency", str(CREATE_CONCURRENCY)),
        *("--key-prefix", f"bench-{label}-create"),
    ]
    given = {
        "tokens": _tokens(settings, stack.run_id, options.users),
        "app_id": settings.cashfree.app_id,
        "secret": settings.cashfree.secret_key.get_secret_value(),
    }
    answer = json.loads(await _load(argv, given))
    return CreateResult.model_validate(answer["result"]), list(answer["orders"])


def _tokens(settings: Settings, run_id: str, users: int) -> list[str]:
    now = datetime.now(UTC)
    return [
        mint_token(settings.security, user_id=f"bench-{run_id}-user-{n}", admin=False, now=now)
        for n in range(users)
    ]


async def _load(argv: Sequence[str], given: Mapping[str, object]) -> str:
    """Run one phase's load generator with ``given`` on stdin; its one line of output."""
    async with spawn("pipeline-load", argv, stdin_line=json.dumps(given), read_stdout=True) as load:
        line = await read_line(load, within=_LOAD_DEADLINE_SECONDS, name="pipeline-load")
        await finish(load, "pipeline-load")
    return line


async def _webhooks(stack: _Stack, label: str, orders: Sequence[str], *, rate: float) -> WebhookLoad:
    argv = [
        *("-m", "payments.pipeline.bench_pipeline_load", "webhooks"),
        *("--url", f"{stack.web_url}{CASHFREE_WEBHOOK_PATH}", "--key-prefix", f"bench-{label}"),
        *("--rate", repr(rate), "--concurrency", str(WEBHOOK_CONCURRENCY)),
    ]
    given = {"secret": stack.settings.cashfree.secret_key.get_secret_value(), "orders": list(orders)}
    return WebhookLoad.model_validate_json(await _load(argv, given))


async def _maximum_rate(stack: _Stack, label: str, orders: Sequence[str]) -> tuple[MaxRate, PhaseUsage]:
    before, scraped = await scrape(stack.metrics_ports), time.monotonic()
    readings, since = _Readings(stack), datetime.now(UTC)
    load = await _webhooks(stack, f"{label}-max", orders, rate=0.0)
    outcomes = await drain(stack.resources.pool, orders, since)
    after, window = await scrape(stack.metrics_ports), time.monotonic() - scraped
    finals = [o.final_at.timestamp() for o in outcomes.values() if o.final_at]
    emails = [o.emailed_at.timestamp() for o in outcomes.values() if o.emailed_at]
    maximum = MaxRate(
        payments=len(orders),
        final=len(finals),
        emailed=len(emails),
        webhook_errors=load.errors,
        seconds_to_final=max(finals, default=load.started_at) - load.started_at,
        seconds_to_email=max(emails, default=load.started_at) - load.started_at,
        window_seconds=window,
        agents=agent_throughput(before, after, window),
    )
    return maximum, readings.done("maximum rate", load.usage)


async def _half_rate(
    stack: _Stack, label: str, orders: Sequence[str], *, rate: float
) -> tuple[OpenLoop, PhaseUsage]:
    readings, since = _Readings(stack), datetime.now(UTC)
    # A pipeline that finished nothing has no rate to halve; one webhook a second still measures it.
    rate = rate if rate > 0 else 1.0
    load = await _webhooks(stack, f"{label}-half", orders, rate=rate)
    outcomes = await drain(stack.resources.pool, orders, since)
    to_final, to_email = end_to_end_latencies(outcomes, load.answered_at)
    at_half = OpenLoop(
        rate=rate,
        payments=len(orders),
        send_seconds=load.seconds,
        max_lag_seconds=load.max_lag_seconds,
        webhook_errors=load.errors,
        final=sum(1 for o in outcomes.values() if o.final_at),
        emailed=sum(1 for o in outcomes.values() if o.emailed_at),
        to_final=LatencySummary.of(to_final),
        to_email=LatencySummary.of(to_email),
    )
    return at_half, readings.done("half rate", load.usage)

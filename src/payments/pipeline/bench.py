"""``payments bench``: webhook ingest against a ceiling measured in the same run, and the whole
pipeline end to end (DESIGN §11, issue 13).

Every process measured is a process of its own, so that none measures itself:

- the ceiling (``bench_ceiling``): a bare aiohttp handler that only publishes the body with a confirm;
- ``payments web``, the real ingest, on the real Redis and PostgreSQL of the environment;
- the load generators (``bench_load`` for ingest, ``bench_pipeline_load`` for the pipeline);
- for the pipeline phases (``bench_pipeline``): ``payments sandbox``, ``smtp-sink``, ``web`` and one
  or more ``payments worker``.

**Ingest** publishes into a RabbitMQ vhost created for it (``payments-bench-<id>``, through
``rabbitmqctl``) and deleted at the end. No worker runs there: the deliveries simply queue; the queue
is purged before each run, and its depth after the run is checked against the 200s the load generator
saw. Idempotency keys are unique per run (``bench-<id>-<target>-<processes>-<run>-<n>``), and
``payments web`` keeps them for a minute only, so the run leaves nothing lasting in Redis either.
Each repetition measures, for each server process count, the ceiling and then ingest; the best run per
target and count is kept (see ``BenchReport.best``).

**The pipeline** runs in a vhost of its own (``payments-bench-<id>-pipeline``), so that nothing ingest
left queued reaches its workers. The results are printed as tables and can be written as JSON and as
``docs/PERFORMANCE.md`` with a latency plot beside it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Final

from payments.bridges.rabbitmq.inspection import queue_depths
from payments.pipeline import bootstrap
from payments.pipeline.bench_docs import render_performance
from payments.pipeline.bench_machine import (
    describe_machine,
    machine_busy_seconds,
    process_usage,
    used_between,
)
from payments.pipeline.bench_pipeline import PipelineOptions, pipeline_problems, run_pipeline
from payments.pipeline.bench_pipeline_report import PIPELINE_HEADER, PipelineRun, agent_rows, pipeline_rows
from payments.pipeline.bench_plot import PLOT_NAME, write_latency_plot
from payments.pipeline.bench_processes import (
    HOST,
    LOG_DIRECTORY,
    BenchError,
    child_environment,
    finish,
    free_port,
    fresh_vhost,
    read_line,
    spawn,
    wait_healthy,
    with_amqp_url,
)
from payments.pipeline.bench_report import (
    BenchReport,
    LoadReport,
    Machine,
    Method,
    RunResult,
    Target,
    render_table,
    report_json,
    text_table,
)
from payments.pipeline.bench_stats import ProcessUsage
from payments.pipeline.logging import configure_logging
from payments.pipeline.settings import Settings
from payments.pipeline.topology import WEBHOOKS_RECEIVED
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH

__all__ = ["LOG_DIRECTORY", "BenchError", "BenchOptions", "Phase", "fresh_vhost", "run_bench"]

#: Slack on top of a phase's own length before a silent load generator counts as hung.
_PHASE_SLACK_SECONDS: Final = 120.0
#: More server processes than this would only measure the machine's two cores fighting.
MAX_PROCESSES: Final = 4


class Phase(StrEnum):
    """The parts of a run ``--phases`` chooses from."""

    INGEST = "ingest"  #: webhook ingest and the ceiling, on each server process count
    PIPELINE = "pipeline"  #: creates, the maximum rate, end-to-end latency at half of it, per worker count


def parse_phases(names: Sequence[str]) -> tuple[Phase, ...]:
    """``--phases`` as phases, in the order they run; ``ValueError`` names what is not a phase."""
    known = {phase.value for phase in Phase}
    if unknown := [name for name in names if name not in known]:
        raise ValueError(f"--phases takes {', '.join(sorted(known))}, not {', '.join(unknown)}")
    return tuple(phase for phase in Phase if phase.value in names)


@dataclass(frozen=True)
class BenchOptions:
    """``payments bench``'s command line."""

    concurrency: int = 32
    duration_seconds: float = 10.0
    #: When set, each run measures this many requests instead of ``duration_seconds``.
    requests: int | None = None
    warmup_seconds: float = 2.0
    repeat: int = 2
    json_path: Path | None = None
    docs_path: Path | None = None
    phases: tuple[Phase, ...] = (Phase.INGEST, Phase.PIPELINE)
    #: Server process counts ingest and the ceiling are measured with.
    processes: tuple[int, ...] = (1, 2)
    pipeline: PipelineOptions = field(default_factory=PipelineOptions)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.repeat < 1 or (self.requests is not None and self.requests < 1):
            raise ValueError("--concurrency, --repeat and --requests must be at least 1")
        if self.duration_seconds <= 0 or self.warmup_seconds < 0:
            raise ValueError("--duration must be positive and --warmup not negative")
        if not self.phases:
            raise ValueError("--phases must name at least one of ingest, pipeline")
        if list(self.processes) != sorted(set(self.processes)) or not self.processes:
            raise ValueError("--processes must be distinct counts in ascending order, e.g. 1,2")
        if not all(1 <= count <= MAX_PROCESSES for count in self.processes):
            raise ValueError(f"--processes must be counts from 1 to {MAX_PROCESSES}")
        if self.processes[0] * self.concurrency < self.processes[-1]:
            raise ValueError("--concurrency must be at least the largest --processes count")
        if problem := pipeline_problems(self.pipeline):
            raise ValueError(problem)


@dataclass(frozen=True)
class _Server:
    process: asyncio.subprocess.Process
    url: str


@dataclass(frozen=True)
class _Bench:
    """What every ingest run needs: the run's id, the servers, the connections and the signing secret."""

    run_id: str
    options: BenchOptions
    resources: bootstrap.Resources
    #: Each target's server processes; a run on N processes loads the first N.
    servers: Mapping[Target, Sequence[_Server]]
    secret: str


async def run_bench(settings: Settings, options: BenchOptions, *, environ: Mapping[str, str]) -> int:
    """Measure, print the tables, write what was asked for; 0 when every request was accepted and
    queued and every pipeline payment was created, finalized and emailed.

    ``environ`` is the environment the service's processes are started from (with the bench's changes).
    Raises ``BenchError`` when it cannot measure.
    """
    configure_logging(level="WARNING", service=settings.app.service_name, environment=settings.app.env.value)
    run_id, started_at = uuid.uuid4().hex[:8], datetime.now(UTC)
    # web and the workers need the schema; like `payments demo`, the bench brings it up to date.
    await bootstrap.run_migrate(settings, create_database=True)
    runs: Sequence[RunResult] = ()
    pipeline: Sequence[PipelineRun] = ()
    machine: Machine | None = None
    vhosts: list[str] = []
    if Phase.INGEST in options.phases:
        vhosts.append(f"payments-bench-{run_id}")
        runs, machine = await _ingest(settings, options, run_id, environ)
    if Phase.PIPELINE in options.phases:
        vhosts.append(f"payments-bench-{run_id}-pipeline")
        pipeline, machine = await run_pipeline(settings, options.pipeline, run_id=run_id, environ=environ)
    assert machine is not None  # at least one phase ran (BenchOptions)
    report = BenchReport(
        run_id=run_id,
        started_at=started_at,
        machine=machine,
        method=_method(options, runs),
        runs=tuple(runs),
        pipeline=tuple(pipeline),
        vhosts=tuple(vhosts),
    )
    _write_results(report, options)
    return 0 if _all_accepted_and_queued(report) and not _pipeline_failures(report) else 1


async def _ingest(
    settings: Settings, options: BenchOptions, run_id: str, environ: Mapping[str, str]
) -> tuple[list[RunResult], Machine]:
    async with fresh_vhost(settings.rabbitmq.url.get_secret_value(), f"payments-bench-{run_id}") as amqp_url:
        on_vhost = with_amqp_url(settings, amqp_url)
        await bootstrap.run_topology(on_vhost)
        async with (
            bootstrap.open_resources(on_vhost, process="bench") as resources,
            _servers(amqp_url, environ, max(options.processes)) as servers,
        ):
            bench = _Bench(
                run_id, options, resources, servers, settings.cashfree.secret_key.get_secret_value()
            )
            runs = [
                await _measure(bench, target, processes, repetition)
                for repetition in range(1, options.repeat + 1)
                for processes in options.processes
                for target in Target
            ]
            return runs, await describe_machine(resources)


def _method(options: BenchOptions, runs: Sequence[RunResult]) -> Method:
    return Method(
        phases=tuple(phase.value for phase in options.phases),
        concurrency=options.concurrency,
        duration_seconds=None if options.requests is not None else options.duration_seconds,
        requests=options.requests,
        warmup_seconds=options.warmup_seconds,
        repeat=options.repeat,
        processes=options.processes,
        body_bytes=runs[0].load.body_bytes if runs else 0,
        pipeline=options.pipeline.method() if Phase.PIPELINE in options.phases else None,
    )


@asynccontextmanager
async def _servers(
    amqp_url: str, environ: Mapping[str, str], count: int
) -> AsyncIterator[dict[Target, list[_Server]]]:
    """``count`` ceilings and ``count`` ``payments web``, started, healthy, and stopped on exit."""
    async with AsyncExitStack() as stack:
        servers: dict[Target, list[_Server]] = {Target.CEILING: [], Target.INGEST: []}
        for index in range(1, count + 1):
            ceiling_port, web_port = free_port(), free_port()
            ceiling_argv = [
                "-m",
                "payments.pipeline.bench_ceiling",
                "--host",
                HOST,
                "--port",
                str(ceiling_port),
            ]
            ceiling = await stack.enter_async_context(
                spawn(f"ceiling-{index}", ceiling_argv, stdin_line=amqp_url)
            )
            web_env = _web_environment(environ, amqp_url, web_port)
            web = await stack.enter_async_context(
                spawn(f"web-{index}", ["-m", "payments", "web"], env=web_env)
            )
            servers[Target.CEILING].append(_Server(ceiling, f"http://{HOST}:{ceiling_port}/"))
            servers[Target.INGEST].append(_Server(web, f"http://{HOST}:{web_port}{CASHFREE_WEBHOOK_PATH}"))
            await wait_healthy(f"http://{HOST}:{ceiling_port}/health", ceiling, f"ceiling-{index}")
            await wait_healthy(f"http://{HOST}:{web_port}/health", web, f"web-{index}")
        yield servers


def _web_environment(environ: Mapping[str, str], amqp_url: str, port: int) -> dict[str, str]:
    return child_environment(
        environ,
        RABBITMQ_URL=amqp_url,
        HOST=HOST,
        PORT=str(port),
        LOG_LEVEL="WARNING",
        # The bench's keys need not outlive it: a minute (the least allowed) instead of a week.
        WEBHOOK_DEDUP_TTL_SECONDS="60",
        # The load comes from loopback, which an allow-list of Cashfree's addresses would refuse.
        WEBHOOK_ALLOWED_SOURCES="",
    )


async def _measure(bench: _Bench, target: Target, processes: int, repetition: int) -> RunResult:
    """One run: purge the queue, load the target's first ``processes`` servers, read CPU around the
    measured phase, count the queue."""
    servers, options = bench.servers[target][:processes], bench.options
    pids = [server.process.pid for server in servers]
    await _purge(bench.resources)
    argv = _load_argv(bench, [server.url for server in servers], f"{target.value}-{processes}-{repetition}")
    async with spawn("load", argv, stdin_line=bench.secret, read_stdout=True) as load:
        if await read_line(load, within=options.warmup_seconds + _PHASE_SLACK_SECONDS) != "warm":
            raise BenchError(f"the load generator did not report its warm-up; see {LOG_DIRECTORY}/load.log")
        servers_before, load_before = [process_usage(pid) for pid in pids], process_usage(load.pid)
        busy_before = machine_busy_seconds()
        line = await read_line(load, within=_measured_timeout(options))
        busy_after = machine_busy_seconds()
        servers_after, load_after = [process_usage(pid) for pid in pids], process_usage(load.pid)
        await finish(load, "load")
    [depth] = await queue_depths(bench.resources.amqp, [WEBHOOKS_RECEIVED.name])
    used = [used_between(before, after) for before, after in zip(servers_before, servers_after, strict=True)]
    return RunResult(
        target=target,
        repetition=repetition,
        processes=processes,
        load=LoadReport.model_validate_json(line),
        server=_together(used),
        servers=tuple(used),
        load_generator=used_between(load_before, load_after),
        machine_cpu_seconds=busy_after - busy_before,
        queued=depth.messages,
    )


def _together(usages: Sequence[ProcessUsage]) -> ProcessUsage:
    return ProcessUsage(
        cpu_seconds=sum(usage.cpu_seconds for usage in usages),
        peak_rss_bytes=sum(usage.peak_rss_bytes for usage in usages),
    )


def _load_argv(bench: _Bench, urls: Sequence[str], label: str) -> list[str]:
    options = bench.options
    argv = [
        "-m",
        "payments.pipeline.bench_load",
        *(argument for url in urls for argument in ("--url", url)),
        "--key-prefix",
        f"bench-{bench.run_id}-{label}",
        "--concurrency",
        str(options.concurrency),
        "--warmup",
        str(options.warmup_seconds),
        "--duration",
        str(options.duration_seconds),
    ]
    return argv if options.requests is None else [*argv, "--requests", str(options.requests)]


def _measured_timeout(options: BenchOptions) -> float:
    # A run of N requests has no set length; ten minutes is far beyond any sensible N on one machine.
    return _PHASE_SLACK_SECONDS + (600.0 if options.requests is not None else options.duration_seconds)


async def _purge(resources: bootstrap.Resources) -> None:
    channel = await resources.amqp.channel()
    try:
        queue = await channel.declare_queue(WEBHOOKS_RECEIVED.name, passive=True)
        await queue.purge()
    finally:
        await channel.close()


def _write_results(report: BenchReport, options: BenchOptions) -> None:
    print(render_table(report))
    if report.pipeline:
        print(f"\npipeline:\n{text_table(PIPELINE_HEADER, pipeline_rows(report.pipeline))}")
        header, rows = agent_rows(report.pipeline)
        print(f"\nagents over the maximum-rate phase:\n{text_table(header, rows)}")
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
        print(f"raw numbers: {options.json_path}")
    if options.docs_path is not None:
        plot = options.docs_path.parent / PLOT_NAME
        write_latency_plot(report, plot)
        options.docs_path.write_text(render_performance(report, plot_name=PLOT_NAME), encoding="utf-8")
        print(f"written: {options.docs_path}, {plot}")


def _all_accepted_and_queued(report: BenchReport) -> bool:
    """Every request got a 200 and every 200 left a message on the queue; else say what went wrong."""
    ok = True
    for run in report.runs:
        label = f"{run.target.value} on {run.processes} run {run.repetition}"
        if run.error_count:
            print(f"payments bench: {label}: {run.error_count} request(s) not accepted", file=sys.stderr)
            ok = False
        if run.queued != run.load.accepted_total:
            print(
                f"payments bench: {label}: {run.load.accepted_total} accepted but {run.queued} queued",
                file=sys.stderr,
            )
            ok = False
    return ok


def _pipeline_failures(report: BenchReport) -> list[str]:
    """What the pipeline failed to do, each said on stderr; empty when every payment went through."""
    failures = [problem for run in report.pipeline for problem in run_problems(run)]
    for problem in failures:
        print(f"payments bench: {problem}", file=sys.stderr)
    return failures


def run_problems(run: PipelineRun) -> list[str]:
    """A pipeline run's creates, webhooks, finals and emails that did not all succeed."""
    label = f"pipeline with {run.workers} worker(s)"
    problems = []
    if run.create.errors:
        problems.append(f"{label}: creates not answered 201: {run.create.errors}")
    for name, errors in (
        ("maximum-rate", run.maximum.webhook_errors),
        ("half-rate", run.half.webhook_errors),
    ):
        if errors:
            problems.append(f"{label}: {name} webhooks not answered 200: {errors}")
    for name, phase in (("maximum-rate", run.maximum), ("half-rate", run.half)):
        if phase.final != phase.payments or phase.emailed != phase.payments:
            problems.append(
                f"{label}: {name}: of {phase.payments} payments {phase.final} final, {phase.emailed} emailed"
            )
    return problems

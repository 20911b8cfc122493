"""The numbers of ``payments bench``: what each ingest run measured, the run kept per target and
process count, the table; the whole report, with the pipeline's part (``bench_pipeline_report``).

Pure data and formatting, no I/O, so it is tested without services. Times are seconds everywhere
(STYLE §11); only the table for people shows milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from payments.pipeline.bench_pipeline_report import PipelineMethod, PipelineRun, pipeline_json
from payments.pipeline.bench_stats import Answers, ProcessUsage, _Model, errors_of, mib, share

#: The issues' goal (5 and 13): ingest at no less than this share of the same-run ceiling.
GOAL_RATIO: Final = 0.60
#: The one status a delivered webhook gets (Cashfree counts only 200 as delivered).
ACCEPTED: Final = "200"


class Target(StrEnum):
    """What a run sent its load to, in the order each repetition measures them."""

    CEILING = "ceiling"  #: a bare aiohttp handler that only publishes the body with a confirm
    INGEST = "ingest"  #: ``payments web``: POST /api/v1/webhooks/cashfree


class LoadReport(Answers):
    """The load generator's account of one measured phase (the JSON line it prints last)."""

    #: 200 answers including the warm-up: how many messages the run should have left on the queue.
    accepted_total: int
    #: Size of one delivery's body (they differ by a few bytes of ids; this is the first one's).
    body_bytes: int

    @property
    def accepted(self) -> int:
        return self.statuses.get(ACCEPTED, 0)

    @property
    def throughput(self) -> float:
        """Accepted webhooks per second: answered 200, so verified, deduplicated and durably queued."""
        return self.accepted / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> dict[str, int]:
        """Every request that did not get a 200, by status or failure type."""
        return errors_of(self.statuses, self.failures, ok=ACCEPTED)


class RunResult(_Model):
    """One measured phase against one target served by one or more processes."""

    target: Target
    repetition: int
    #: How many server processes of the target shared the load (the load generator spreads its
    #: connections over them).
    processes: int = 1
    load: LoadReport
    #: The processes serving the target together: CPU summed, peak resident sets summed.
    server: ProcessUsage
    #: Each serving process on its own, in the order the load generator was given their URLs.
    servers: tuple[ProcessUsage, ...] = ()
    load_generator: ProcessUsage
    #: Busy CPU seconds of the whole machine (all cores, every process) during the measured phase.
    machine_cpu_seconds: float
    #: Messages on ``webhooks.received`` after the run (the queue is purged before each run).
    queued: int

    @property
    def error_count(self) -> int:
        return sum(self.load.errors.values())

    @property
    def server_cpu_per_request(self) -> float:
        """Server CPU seconds spent per accepted webhook: the cost of the handler, free of queueing."""
        return self.server.cpu_seconds / self.load.accepted if self.load.accepted else 0.0

    def machine_busy(self, cores: int) -> float:
        """How busy the machine's ``cores`` were, together, in the measured phase (1.0 = all of them)."""
        return share(self.machine_cpu_seconds, self.load.seconds * cores)


class Machine(_Model):
    """Where the numbers come from; load generator, servers and services all share this machine."""

    cores: int
    cpu_model: str
    memory_bytes: int
    python: str
    platform: str
    rabbitmq: str
    redis: str
    postgresql: str
    aiohttp: str
    aio_pika: str


class Method(_Model):
    """How the load was applied."""

    #: Which parts ran (``ingest``, ``pipeline``).
    phases: tuple[str, ...] = ("ingest",)
    concurrency: int
    #: The measured time per run, or None when each run measured a fixed number of requests.
    duration_seconds: float | None
    requests: int | None
    warmup_seconds: float
    repeat: int
    #: The server process counts ingest and the ceiling were measured with.
    processes: tuple[int, ...] = (1,)
    #: Size of one delivery (0 when ingest was not measured).
    body_bytes: int
    #: How the pipeline was driven; None when it was not measured.
    pipeline: PipelineMethod | None = None


class BenchReport(_Model):
    """Everything one ``payments bench`` measured."""

    #: Names the run's vhosts (``payments-bench-<id>``...) and starts its idempotency keys.
    run_id: str
    started_at: datetime
    machine: Machine
    method: Method
    runs: tuple[RunResult, ...]
    #: The pipeline measured with each worker count, fewest workers first; empty when not run.
    pipeline: tuple[PipelineRun, ...] = ()
    #: The vhosts the run made (and deleted).
    vhosts: tuple[str, ...] = ()

    def has(self, target: Target, processes: int = 1) -> bool:
        return any(run.target is target and run.processes == processes for run in self.runs)

    def best(self, target: Target, processes: int = 1) -> RunResult:
        """The run of ``target`` on ``processes`` with the highest throughput. Best rather than median:
        on a shared machine, noise (other processes, the broker's disk flushes) only ever slows a run."""
        return max(
            (run for run in self.runs if run.target is target and run.processes == processes),
            key=lambda run: run.load.throughput,
        )

    def ratio_at(self, processes: int) -> float:
        """The best ingest throughput as a share of the best ceiling throughput, both on ``processes``."""
        ceiling = self.best(Target.CEILING, processes).load.throughput
        return self.best(Target.INGEST, processes).load.throughput / ceiling if ceiling else 0.0

    @property
    def ratio(self) -> float:
        """The headline ratio: one process each, as the goal of issue 5 was set."""
        return self.ratio_at(self.method.processes[0])

    def ratios_by_repetition(self, processes: int | None = None) -> list[float]:
        """Ingest over ceiling within each repetition: how much the ratio moves from run to run."""
        count = self.method.processes[0] if processes is None else processes
        throughput = {
            (run.target, run.repetition): run.load.throughput for run in self.runs if run.processes == count
        }
        return [
            throughput[Target.INGEST, repetition] / throughput[Target.CEILING, repetition]
            for repetition in range(1, self.method.repeat + 1)
            if throughput.get((Target.CEILING, repetition)) and (Target.INGEST, repetition) in throughput
        ]

    def scaling(self, target: Target) -> float:
        """Best throughput on the most processes over best on the fewest (1.0 = no gain)."""
        fewest, most = self.method.processes[0], self.method.processes[-1]
        base = self.best(target, fewest).load.throughput
        return self.best(target, most).load.throughput / base if base else 0.0

    @property
    def error_count(self) -> int:
        return sum(run.error_count for run in self.runs)


def report_json(report: BenchReport) -> dict[str, Any]:
    """The raw numbers, plus the derived ones (throughput, errors, best runs, ratios) spelled out."""
    cores = report.machine.cores
    ingest: dict[str, Any] = {}
    if report.runs:
        ingest = {
            "best": {
                str(count): {target.value: _run_json(report.best(target, count), cores) for target in Target}
                for count in report.method.processes
            },
            "selection": "best run per target and process count by throughput",
            "ratio": report.ratio,
            "ratios_by_processes": {str(count): report.ratio_at(count) for count in report.method.processes},
            "ratios_by_repetition": report.ratios_by_repetition(),
        }
    return {
        **report.model_dump(mode="json", exclude={"runs", "pipeline"}),
        "runs": [_run_json(run, cores) for run in report.runs],
        **ingest,
        "goal_ratio": GOAL_RATIO,
        "pipeline": [pipeline_json(run) for run in report.pipeline],
    }


def _run_json(run: RunResult, cores: int) -> dict[str, Any]:
    return {
        **run.model_dump(mode="json"),
        "requests_per_second": run.load.throughput,
        "errors": run.load.errors,
        "error_count": run.error_count,
        "server_cpu_seconds_per_request": run.server_cpu_per_request,
        "machine_busy": run.machine_busy(cores),
    }


_HEADER: Final = (
    "target",
    "procs",
    "run",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "server CPU",
    "CPU/req",
    "server RSS",
    "load CPU",
    "machine busy",
)


def table_rows(report: BenchReport) -> list[tuple[str, ...]]:
    """One row per run: throughput, latency in ms, errors, server CPU (share of one core, and per
    request), the servers' peak RSS, the load generator's CPU share and how busy the whole machine was."""
    return [run_row(run, report.machine.cores) for run in report.runs]


def run_row(run: RunResult, cores: int) -> tuple[str, ...]:
    latency, seconds = run.load.latency_seconds, run.load.seconds
    errors = ", ".join(f"{name}: {count}" for name, count in sorted(run.load.errors.items())) or "0"
    return (
        run.target.value,
        str(run.processes),
        str(run.repetition),
        f"{run.load.throughput:.0f}",
        f"{latency.p50 * 1000:.1f}",
        f"{latency.p95 * 1000:.1f}",
        f"{latency.p99 * 1000:.1f}",
        errors,
        f"{share(run.server.cpu_seconds, seconds):.0%}",
        f"{run.server_cpu_per_request * 1e6:.0f} µs",
        mib(run.server.peak_rss_bytes),
        f"{share(run.load_generator.cpu_seconds, seconds):.0%}",
        f"{run.machine_busy(cores):.0%}",
    )


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, a rule under the header."""
    all_rows = [header, *rows]
    widths = [max(len(row[column]) for row in all_rows) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in all_rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_table(report: BenchReport) -> str:
    """The ingest table printed on stdout, followed by the ratio lines (empty without ingest runs)."""
    if not report.runs:
        return ""
    return "\n".join([text_table(_HEADER, table_rows(report)), "", *ratio_lines(report)])


def ratio_lines(report: BenchReport) -> list[str]:
    return [ratio_line(report, count) for count in report.method.processes]


def ratio_line(report: BenchReport, processes: int | None = None) -> str:
    count = report.method.processes[0] if processes is None else processes
    ingest, ceiling = report.best(Target.INGEST, count), report.best(Target.CEILING, count)
    ratio = report.ratio_at(count)
    verdict = "meets" if ratio >= GOAL_RATIO else "is below"
    return (
        f"{_processes(count)}: ingest {ingest.load.throughput:.0f} req/s vs ceiling "
        f"{ceiling.load.throughput:.0f} req/s (best of {report.method.repeat} each): {ratio:.0%}, which "
        f"{verdict} the {GOAL_RATIO:.0%} goal (per repetition: "
        f"{percentages(report.ratios_by_repetition(count))})"
    )


def _processes(count: int) -> str:
    return f"{count} process{'es' if count > 1 else ''}"


def percentages(shares: Sequence[float]) -> str:
    return ", ".join(f"{value:.0%}" for value in shares)

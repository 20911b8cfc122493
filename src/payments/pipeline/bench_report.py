"""The numbers of ``payments bench``: what each run measured, the run kept per target, the table.

Pure data and formatting, no I/O, so it is tested without services. Times are seconds everywhere
(STYLE §11); only the table for people shows milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

#: The issues' goal (5 and 13): ingest at no less than this share of the same-run ceiling.
GOAL_RATIO: Final = 0.60
#: The one status a delivered webhook gets (Cashfree counts only 200 as delivered).
ACCEPTED: Final = "200"


class Target(StrEnum):
    """What a run sent its load to, in the order each repetition measures them."""

    CEILING = "ceiling"  #: a bare aiohttp handler that only publishes the body with a confirm
    INGEST = "ingest"  #: ``payments web``: POST /api/v1/webhooks/cashfree


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def percentile(ordered: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile of ``ordered`` (ascending, not empty): the smallest sample with at
    least ``rank`` per cent of the samples at or below it. No interpolation: every value was observed."""
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


class LatencySummary(_Model):
    """Latency of the accepted (200) answers, in seconds, as the load generator timed them."""

    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> LatencySummary:
        ordered = sorted(samples)
        if not ordered:
            return cls(p50=0.0, p95=0.0, p99=0.0, max=0.0, mean=0.0)
        return cls(
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
            mean=sum(ordered) / len(ordered),
        )


class LoadReport(_Model):
    """The load generator's account of one measured phase (the JSON line it prints last)."""

    #: Requests started in the measured phase; each ended in an HTTP status or a transport failure.
    requests: int
    #: From the first request sent to the last answer received.
    seconds: float
    #: Answers by HTTP status ("200", "503", ...).
    statuses: dict[str, int]
    #: Requests that got no HTTP answer, by exception type (connection reset, timeout...).
    failures: dict[str, int]
    latency_seconds: LatencySummary
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
        wrong = {status: count for status, count in self.statuses.items() if status != ACCEPTED}
        return {**wrong, **self.failures}


class ProcessUsage(_Model):
    """What a process used: CPU during the measured phase, and its resident-set peak so far."""

    cpu_seconds: float
    peak_rss_bytes: int


class RunResult(_Model):
    """One measured phase against one target."""

    target: Target
    repetition: int
    load: LoadReport
    #: The process serving the target (the ceiling's or ``payments web``).
    server: ProcessUsage
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
        return _share(self.machine_cpu_seconds, self.load.seconds * cores)


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

    concurrency: int
    #: The measured time per run, or None when each run measured a fixed number of requests.
    duration_seconds: float | None
    requests: int | None
    warmup_seconds: float
    repeat: int
    body_bytes: int


class BenchReport(_Model):
    """Everything one ``payments bench`` measured."""

    #: Names the run's vhost (``payments-bench-<id>``) and starts its idempotency keys.
    run_id: str
    started_at: datetime
    machine: Machine
    method: Method
    runs: tuple[RunResult, ...]

    def best(self, target: Target) -> RunResult:
        """The run of ``target`` with the highest throughput. Best rather than median: on a shared
        machine, noise (other processes, the broker's disk flushes) only ever slows a run down."""
        return max((run for run in self.runs if run.target is target), key=lambda run: run.load.throughput)

    @property
    def ratio(self) -> float:
        """The best ingest throughput as a share of the best ceiling throughput."""
        ceiling = self.best(Target.CEILING).load.throughput
        return self.best(Target.INGEST).load.throughput / ceiling if ceiling else 0.0

    def ratios_by_repetition(self) -> list[float]:
        """Ingest over ceiling within each repetition: how much the ratio moves from run to run."""
        throughput = {(run.target, run.repetition): run.load.throughput for run in self.runs}
        return [
            throughput[Target.INGEST, repetition] / throughput[Target.CEILING, repetition]
            for repetition in range(1, self.method.repeat + 1)
            if throughput.get((Target.CEILING, repetition)) and (Target.INGEST, repetition) in throughput
        ]

    @property
    def error_count(self) -> int:
        return sum(run.error_count for run in self.runs)


def report_json(report: BenchReport) -> dict[str, Any]:
    """The raw numbers, plus the derived ones (throughput, errors, best runs, ratio) spelled out."""
    return {
        **report.model_dump(mode="json", exclude={"runs"}),
        "runs": [_run_json(run, report.machine.cores) for run in report.runs],
        "best": {target.value: _run_json(report.best(target), report.machine.cores) for target in Target},
        "selection": "best run per target by throughput",
        "ratio": report.ratio,
        "ratios_by_repetition": report.ratios_by_repetition(),
        "goal_ratio": GOAL_RATIO,
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
    request), the server's peak RSS, the load generator's CPU share and how busy the whole machine was."""
    return [_row(run, report.machine.cores) for run in report.runs]


def _row(run: RunResult, cores: int) -> tuple[str, ...]:
    latency, seconds = run.load.latency_seconds, run.load.seconds
    errors = ", ".join(f"{name}: {count}" for name, count in sorted(run.load.errors.items())) or "0"
    return (
        run.target.value,
        str(run.repetition),
        f"{run.load.throughput:.0f}",
        f"{latency.p50 * 1000:.1f}",
        f"{latency.p95 * 1000:.1f}",
        f"{latency.p99 * 1000:.1f}",
        errors,
        f"{_share(run.server.cpu_seconds, seconds):.0%}",
        f"{run.server_cpu_per_request * 1e6:.0f} µs",
        f"{run.server.peak_rss_bytes / 2**20:.0f} MiB",
        f"{_share(run.load_generator.cpu_seconds, seconds):.0%}",
        f"{run.machine_busy(cores):.0%}",
    )


def _share(cpu_seconds: float, wall_seconds: float) -> float:
    return cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def render_table(report: BenchReport) -> str:
    """The table printed on stdout, followed by the ratio line."""
    rows = [_HEADER, *table_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, "", ratio_line(report)])


def ratio_line(report: BenchReport) -> str:
    ingest, ceiling = report.best(Target.INGEST), report.best(Target.CEILING)
    verdict = "meets" if report.ratio >= GOAL_RATIO else "is below"
    return (
        f"ingest {ingest.load.throughput:.0f} req/s vs ceiling {ceiling.load.throughput:.0f} req/s "
        f"(best of {report.method.repeat} each): {report.ratio:.0%}, which {verdict} the "
        f"{GOAL_RATIO:.0%} goal (per repetition: {percentages(report.ratios_by_repetition())})"
    )


def percentages(shares: Sequence[float]) -> str:
    return ", ".join(f"{share:.0%}" for share in shares)

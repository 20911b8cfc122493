"""The pipeline's numbers in ``payments bench``: payment creates, the maximum rate, end-to-end latency
at half of it, throughput per agent and each process's CPU and memory, per worker count.

Pure data and formatting, like ``bench_report``; seconds everywhere, milliseconds only for people.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families

from payments.pipeline.bench_stats import (
    Answers,
    LatencySummary,
    ProcessUsage,
    _Model,
    errors_of,
    mib,
    ms,
    share,
)

#: The answer a created payment gets.
CREATED: Final = "201"
#: The one status a delivered webhook gets.
DELIVERED: Final = "200"
#: The counter each worker exports per agent and outcome (``pipeline/metrics.py``).
AGENT_MESSAGES: Final = "payments_agent_messages"


class PipelineMethod(_Model):
    """How the pipeline was driven."""

    workers: tuple[int, ...]
    #: Payments per webhook phase (the maximum-rate phase and the half-rate phase each get this many).
    payments: int
    users: int
    create_concurrency: int
    webhook_concurrency: int
    #: RETRY_DELAY_SCALE of the pipeline's processes.
    retry_delay_scale: float


class CreateResult(Answers):
    """Payment creates through web, a worker and the sandbox, as the load generator saw them
    (latency over the 201 answers)."""

    #: Payments created and then paid at the sandbox (not timed), ready for their webhooks.
    paid: int
    #: The load generator's own CPU over the creates and the payments.
    usage: ProcessUsage

    @property
    def errors(self) -> dict[str, int]:
        return errors_of(self.statuses, self.failures, ok=CREATED)

    @property
    def throughput(self) -> float:
        return self.statuses.get(CREATED, 0) / self.seconds if self.seconds > 0 else 0.0


class WebhookLoad(_Model):
    """The load generator's account of one webhook phase."""

    #: Wall clock (Unix seconds) when the first webhook was sent.
    started_at: float
    #: From the first webhook sent to the last answer.
    seconds: float
    statuses: dict[str, int]
    failures: dict[str, int]
    #: Wall clock (Unix seconds) of each 200, by order id: t0 of the end-to-end latency.
    answered_at: dict[str, float]
    #: On a schedule: the most a webhook was sent after its slot (0 as fast as possible).
    max_lag_seconds: float
    usage: ProcessUsage

    @property
    def errors(self) -> dict[str, int]:
        return errors_of(self.statuses, self.failures, ok=DELIVERED)


class AgentThroughput(_Model):
    """One agent's messages over the maximum-rate phase (all workers together)."""

    #: Messages finished, by outcome (ok, retried, duplicate, dead_lettered).
    outcomes: dict[str, float]
    per_second: float


class MaxRate(_Model):
    """Webhooks for existing payments, as fast as the load generator can send them."""

    payments: int
    #: Payments final (SUCCESS) and emailed at the end; both should equal ``payments``.
    final: int
    emailed: int
    webhook_errors: dict[str, int]
    #: First webhook sent to the last of these payments final (SUCCESS) in PostgreSQL.
    seconds_to_final: float
    #: First webhook sent to the last of their payment_success emails sent.
    seconds_to_email: float
    #: Between the two scrapes of the workers' /metrics (around the phase, to the last email).
    window_seconds: float
    agents: dict[str, AgentThroughput]

    @property
    def rate(self) -> float:
        """Payments finalized per second: the pipeline's maximum rate."""
        return self.payments / self.seconds_to_final if self.seconds_to_final > 0 else 0.0

    @property
    def emailed_rate(self) -> float:
        """Payments through the whole path (final, then emailed) per second: the end-to-end maximum."""
        return self.payments / self.seconds_to_email if self.seconds_to_email > 0 else 0.0


class OpenLoop(_Model):
    """Webhooks on a fixed schedule at ``rate``, and what each payment went through."""

    rate: float
    payments: int
    send_seconds: float
    max_lag_seconds: float
    webhook_errors: dict[str, int]
    #: Payments final (SUCCESS) and emailed at the end; both should equal ``payments``.
    final: int
    emailed: int
    #: t1 - t0: webhook answered 200 to the payment's SUCCESS written (payments.updated_at).
    to_final: LatencySummary
    #: t2 - t0: webhook answered 200 to its payment_success email sent (emails.sent_at).
    to_email: LatencySummary


class PhaseUsage(_Model):
    """Each process's CPU over one phase, and its resident-set peak by its end."""

    phase: str
    seconds: float
    processes: dict[str, ProcessUsage]


class PipelineRun(_Model):
    """The pipeline with ``workers`` worker processes."""

    workers: int
    create: CreateResult
    maximum: MaxRate
    half: OpenLoop
    usage: tuple[PhaseUsage, ...]


def agent_message_counts(exposition: str) -> dict[tuple[str, str], float]:
    """``payments_agent_messages_total`` of one /metrics page, by (agent, outcome)."""
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(exposition):
        if family.name != AGENT_MESSAGES:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["agent"], sample.labels["outcome"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def agent_throughput(
    before: Mapping[tuple[str, str], float], after: Mapping[tuple[str, str], float], seconds: float
) -> dict[str, AgentThroughput]:
    """Per agent: the messages each outcome gained from ``before`` to ``after``, and their rate."""
    outcomes: dict[str, dict[str, float]] = {}
    for (agent, outcome), value in after.items():
        gained = value - before.get((agent, outcome), 0.0)
        if gained > 0:
            outcomes.setdefault(agent, {})[outcome] = gained
    return {
        agent: AgentThroughput(outcomes=counts, per_second=share(sum(counts.values()), seconds))
        for agent, counts in sorted(outcomes.items())
    }


def pipeline_json(run: PipelineRun) -> dict[str, Any]:
    return {
        **run.model_dump(mode="json"),
        "create_errors": run.create.errors,
        "creates_per_second": run.create.throughput,
        "max_rate_payments_per_second": run.maximum.rate,
        "max_rate_emailed_per_second": run.maximum.emailed_rate,
    }


PIPELINE_HEADER: Final = (
    "workers",
    "create/s",
    "create p50",
    "create p95",
    "create p99",
    "create errors",
    "max final/s",
    "max emailed/s",
    "sent at",
    "to final p50",
    "p95",
    "p99",
    "to email p50",
    "p95",
    "p99",
)


def pipeline_rows(runs: Sequence[PipelineRun]) -> list[tuple[str, ...]]:
    """One row per worker count: creates, the maximum rate, and end-to-end latency at half of it."""
    return [_pipeline_row(run) for run in runs]


def _pipeline_row(run: PipelineRun) -> tuple[str, ...]:
    create, half = run.create.latency_seconds, run.half
    return (
        str(run.workers),
        f"{run.create.throughput:.0f}",
        ms(create.p50),
        ms(create.p95),
        ms(create.p99),
        _errors(run.create.errors),
        f"{run.maximum.rate:.1f}",
        f"{run.maximum.emailed_rate:.1f}",
        f"{half.rate:.1f}/s",
        ms(half.to_final.p50),
        ms(half.to_final.p95),
        ms(half.to_final.p99),
        ms(half.to_email.p50),
        ms(half.to_email.p95),
        ms(half.to_email.p99),
    )


def agent_rows(runs: Sequence[PipelineRun]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Header and rows: messages per second of each agent, one column per worker count."""
    header = ("agent", *(f"{run.workers} worker(s) msg/s" for run in runs), "outcomes (last run)")
    names = sorted({name for run in runs for name in run.maximum.agents})
    rows = []
    for name in names:
        rates = [run.maximum.agents.get(name) for run in runs]
        last = rates[-1]
        outcomes = ", ".join(f"{k}: {v:.0f}" for k, v in sorted(last.outcomes.items())) if last else ""
        rows.append((name, *(f"{rate.per_second:.1f}" if rate else "0" for rate in rates), outcomes))
    return header, rows


USAGE_HEADER: Final = ("workers", "phase", "seconds", "process", "CPU (1 core = 100%)", "peak RSS")


def usage_rows(runs: Sequence[PipelineRun]) -> list[tuple[str, ...]]:
    """Every process in every phase: its CPU share over the phase and its resident-set peak."""
    return [
        (
            str(run.workers),
            phase.phase,
            f"{phase.seconds:.1f}",
            name,
            f"{share(usage.cpu_seconds, phase.seconds):.0%}",
            mib(usage.peak_rss_bytes),
        )
        for run in runs
        for phase in run.usage
        for name, usage in phase.processes.items()
    ]


def _errors(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in sorted(errors.items())) or "0"

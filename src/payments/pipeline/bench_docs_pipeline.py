"""The pipeline's sections of ``docs/PERFORMANCE.md``: creates, the maximum rate, end-to-end latency at
half of it, throughput per agent, every process's CPU and memory, and one worker against two."""

from __future__ import annotations

from collections.abc import Sequence

from payments.pipeline.bench_pipeline_report import (
    PIPELINE_HEADER,
    USAGE_HEADER,
    PipelineMethod,
    PipelineRun,
    agent_rows,
    pipeline_rows,
    usage_rows,
)
from payments.pipeline.bench_stats import markdown_table, ms, share


def pipeline_results(runs: Sequence[PipelineRun]) -> list[str]:
    if not runs:
        return []
    lines = ["### End to end and payment creates", ""]
    for run in runs:
        half, create = run.half, run.create.latency_seconds
        lines.append(
            f"- **{run.workers} worker(s)**: maximum {run.maximum.rate:.1f} payments finalized/s "
            f"({run.maximum.emailed_rate:.1f} emailed/s); at half the emailed rate "
            f"({half.rate:.1f} webhooks/s, "
            f"open loop, never more than {ms(half.max_lag_seconds)} behind schedule) "
            f"webhook -> final p99 **{ms(half.to_final.p99)}** (p50 {ms(half.to_final.p50)}), "
            f"webhook -> email p99 **{ms(half.to_email.p99)}** (p50 {ms(half.to_email.p50)}); "
            f"payment create p99 **{ms(create.p99)}** (p50 {ms(create.p50)}, "
            f"{sum(run.create.errors.values())} errors)."
        )
    header, rows = agent_rows(runs)
    return [
        *lines,
        "",
        *markdown_table(PIPELINE_HEADER, pipeline_rows(runs)),
        "",
        "### Worker throughput per agent (maximum-rate phase, all workers together)",
        "",
        *markdown_table(header, rows),
        "",
        "### CPU and memory of each process, per phase",
        "",
        *markdown_table(USAGE_HEADER, usage_rows(runs)),
        "",
    ]


def pipeline_method(method: PipelineMethod | None) -> list[str]:
    if method is None:
        return []
    return [
        "- **Pipeline processes**: `payments smtp-sink`, `payments sandbox`, `payments web` and "
        f"{' then '.join(str(count) for count in method.workers)} `payments worker` process(es) (workers "
        "are added between counts), on a vhost of their own (`payments-bench-<id>-pipeline`), the "
        "environment's PostgreSQL (migrated first, as `payments demo` does) and Redis. The processes run "
        "as the e2e tests run them: `FRAUD_RULES={}` and `RATE_LIMITS_ENABLED=false` (a few users from "
        "one address would otherwise be refused by design), the sandbox's rate limits off, retry tiers "
        f"scaled by {method.retry_delay_scale:g} (a first retry after {30 * method.retry_delay_scale:g} s).",
        f"- **Creates**: for each worker count, {2 * method.payments} payments through "
        "`POST /api/v1/payments/create` (web -> RabbitMQ -> worker -> sandbox -> PostgreSQL -> reply), "
        f"{method.create_concurrency} in flight, spread over {method.users} users with JWTs minted from "
        "the settings' secret and a unique Idempotency-Key each; latency over the 201 answers. Each is "
        "then paid at the sandbox with its succeeding UPI test instrument (not timed).",
        "- **Webhooks**: the sandbox's own webhooks are withheld (its `withhold_webhooks` fault), so the "
        "bench alone decides when each payment's PAYMENT_SUCCESS webhook is sent. The worker treats it as "
        "a hint and asks the sandbox, which holds the successful attempt.",
        f"- **Maximum rate**: webhooks for {method.payments} payments, {method.webhook_concurrency} in "
        "flight; the rate is payments / (last `payments.updated_at` of SUCCESS - first webhook sent).",
        f"- **Half rate**: another {method.payments} payments, open loop: webhook i sent at "
        "start + i / (emailed rate / 2), whatever the answers before it: half the pace of the whole path, "
        "which ends with the email. Per payment, t0 = its webhook "
        "answered 200 (load generator's wall clock), t1 = `payments.updated_at` of SUCCESS, t2 = "
        "`emails.sent_at` of its `payment_success` email (the email's `event_id` is the outbox event "
        "that asked for it, which names the payment). Read from PostgreSQL, not from logs.",
        "- **Per agent**: each worker's `/metrics` scraped before the maximum-rate phase and after its "
        "last email; `payments_agent_messages_total` deltas summed over workers, over that window.",
        "- **Per process**: CPU from `/proc/<pid>/stat` over each phase, peak RSS (`VmHWM`); the "
        "pipeline's load generator reports its own (`getrusage`, after its start-up).",
    ]


def pipeline_notes(runs: Sequence[PipelineRun]) -> list[str]:
    if not runs:
        return []
    lines = [_email_path_note(run) for run in runs]
    first, last = runs[0], runs[-1]
    if len(runs) > 1:
        gain = last.maximum.rate / first.maximum.rate if first.maximum.rate else 0.0
        lines.append(
            f"- **{first.workers} vs {last.workers} workers.** The maximum rate went from "
            f"{first.maximum.rate:.1f} to {last.maximum.rate:.1f} payments/s (x{gain:.2f}), emails from "
            f"{first.maximum.emailed_rate:.1f} to {last.maximum.emailed_rate:.1f}/s. Two cores are shared "
            "by everything: web, the workers, the sandbox, the SMTP sink, PostgreSQL, Redis, RabbitMQ and "
            f"the load generator; in the maximum-rate phase the workers together used {_worker_cpu(last)} "
            "of one core. A second worker adds concurrency, not cores."
        )
    lines.append(
        "- **Creates wait for a reply.** `POST /api/v1/payments/create` answers only when a worker has "
        "screened the payment (fraud tables in Redis), created the order at the sandbox and stored it "
        "(request/reply over RabbitMQ): its latency is web, the broker both ways, the worker, the "
        "sandbox and PostgreSQL, with the creates always in flight queueing behind each other."
    )
    lines.append(
        "- **Per-agent rates follow the input.** Each payment's webhook is one message for most agents "
        "(two emails per payment: the customer's and the billing copy), so their rates over the window "
        "(to the last email) are the pipeline's pace, not each agent's own limit."
    )
    return lines


def _email_path_note(run: PipelineRun) -> str:
    final, emails = run.maximum.rate, run.maximum.emailed_rate
    return (
        f"- **The email path sets the pace, {run.workers} worker(s).** Payments became final at up to "
        f"{final:.1f}/s, but the path behind it (invoice PDF, then two emails over SMTP) carried "
        f"{emails:.1f}/s; the half-rate phase runs at half of the slower, so its to-email latency is "
        "the path's own time, not a queue in front of the email agent."
    )


def _worker_cpu(run: PipelineRun) -> str:
    phase = next(usage for usage in run.usage if usage.phase == "maximum rate")
    cpu = sum(usage.cpu_seconds for name, usage in phase.processes.items() if name.startswith("worker"))
    return f"{share(cpu, phase.seconds):.0%}"

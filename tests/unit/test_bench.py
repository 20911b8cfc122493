"""The pure parts of ``payments bench``: percentiles, the run kept, the report's text, the deliveries the
load generator sends (genuine Cashfree webhooks to our own verifier), ``/proc`` readings."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.signature import WebhookVerifier, wall_clock_ms
from payments.pipeline.bench_docs import render_performance
from payments.pipeline.bench_load import payment_success_body, signed_headers
from payments.pipeline.bench_machine import process_usage, used_between
from payments.pipeline.bench_report import (
    BenchReport,
    LoadReport,
    Machine,
    Method,
    RunResult,
    Target,
    render_table,
    report_json,
)
from payments.pipeline.bench_stats import CURVE_RANKS, LatencySummary, ProcessUsage, percentile

SECRET = "bench-unit-secret"


def load(accepted: int, *, seconds: float = 10.0, statuses: dict[str, int] | None = None) -> LoadReport:
    return LoadReport(
        requests=accepted,
        seconds=seconds,
        statuses=statuses or {"200": accepted},
        failures={},
        latency_seconds=LatencySummary.of([0.004, 0.005, 0.020]),
        accepted_total=accepted,
        body_bytes=1200,
    )


def run(target: Target, repetition: int, accepted: int, *, processes: int = 1, **load_options) -> RunResult:
    usage = ProcessUsage(cpu_seconds=5.0, peak_rss_bytes=80 * 2**20)
    return RunResult(
        target=target,
        repetition=repetition,
        processes=processes,
        load=load(accepted, **load_options),
        server=usage,
        load_generator=usage,
        machine_cpu_seconds=15.0,
        queued=accepted,
    )


def report(*runs: RunResult, processes: tuple[int, ...] = (1,)) -> BenchReport:
    machine = Machine(
        cores=2,
        cpu_model="test CPU",
        memory_bytes=2**33,
        python="CPython 3.11",
        platform="Linux",
        rabbitmq="3.10",
        redis="7.0",
        postgresql="15",
        aiohttp="3",
        aio_pika="9",
    )
    method = Method(
        concurrency=32,
        duration_seconds=10.0,
        requests=None,
        warmup_seconds=2.0,
        repeat=2,
        processes=processes,
        body_bytes=1200,
    )
    return BenchReport(
        run_id="0a1b2c3d", started_at=datetime.now(UTC), machine=machine, method=method, runs=runs
    )


def test_percentiles_are_nearest_rank_values_that_were_observed():
    samples = [float(n) for n in range(1, 101)]

    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert LatencySummary.of([0.3, 0.1, 0.2]).p50 == 0.2
    assert LatencySummary.of([]).p99 == 0.0


def test_a_latency_summary_keeps_the_curve_the_plot_draws():
    summary = LatencySummary.of([float(n) for n in range(1, 1001)])

    assert len(summary.curve) == len(CURVE_RANKS)
    assert summary.curve[49] == 500.0, "the 50th rank"
    assert summary.curve[-1] == summary.max == 1000.0
    assert list(summary.curve) == sorted(summary.curve)
    assert summary.count == 1000


def test_errors_are_every_non_200_status_and_every_transport_failure():
    measured = load(90, statuses={"200": 90, "503": 4}).model_copy(update={"failures": {"TimeoutError": 1}})

    assert measured.errors == {"503": 4, "TimeoutError": 1}
    assert measured.throughput == 9.0


def test_the_best_run_of_each_target_makes_the_ratio():
    measured = report(
        run(Target.CEILING, 1, 10_000), run(Target.INGEST, 1, 6_000), run(Target.CEILING, 2, 8_000)
    )

    assert measured.best(Target.CEILING).repetition == 1
    assert measured.ratio == pytest.approx(0.6)
    assert report_json(measured)["best"]["1"]["ingest"]["requests_per_second"] == 600.0
    assert "ingest 600 req/s vs ceiling 1000 req/s (best of 2 each): 60%, which meets" in render_table(
        measured
    )


def test_the_ratio_within_each_repetition_shows_the_noise():
    measured = report(
        run(Target.CEILING, 1, 10_000),
        run(Target.INGEST, 1, 6_000),
        run(Target.CEILING, 2, 8_000),
        run(Target.INGEST, 2, 4_000),
    )

    assert measured.ratios_by_repetition() == [pytest.approx(0.6), pytest.approx(0.5)]
    assert "(per repetition: 60%, 50%)" in render_table(measured)


def test_the_page_states_the_result_the_goal_and_how_to_rerun():
    page = render_performance(report(run(Target.CEILING, 1, 10_000), run(Target.INGEST, 1, 4_000)))

    assert "**Ingest: 400 webhooks/s, 40% of the ceiling's 1000 req/s**, which falls short of" in page
    assert ".venv/bin/payments bench --write-docs" in page
    assert "| ingest | 1 | 1 | 400 |" in page


def test_the_load_generators_delivery_is_a_genuine_cashfree_payment_success_webhook():
    body = payment_success_body(7, key_prefix="bench-unit", at=datetime.now(UTC))
    headers = signed_headers(body, secret=SECRET, idempotency_key="bench-unit-7", now_ms=wall_clock_ms())
    webhooks = CashfreeWebhooks(WebhookVerifier([SECRET], tolerance_seconds=300, now_ms=wall_clock_ms))

    identity = webhooks.authenticate(body, headers)

    assert identity.event_type == "PAYMENT_SUCCESS_WEBHOOK"
    assert identity.dedup_key == "cashfree:idem:bench-unit-7"
    assert 900 <= len(body) <= 1500, "about a kilobyte, like Cashfree's own"


def test_proc_readings_of_this_process_show_cpu_and_memory():
    before = process_usage(os.getpid())
    sum(n * n for n in range(200_000))
    after = process_usage(os.getpid())

    used = used_between(before, after)
    assert used.cpu_seconds >= 0
    assert after.peak_rss_bytes > 10 * 2**20


def test_one_process_against_two_gives_a_ratio_and_a_gain_for_each():
    measured = report(
        run(Target.CEILING, 1, 10_000),
        run(Target.INGEST, 1, 6_000),
        run(Target.CEILING, 1, 15_000, processes=2),
        run(Target.INGEST, 1, 7_500, processes=2),
        processes=(1, 2),
    )

    assert measured.ratio == pytest.approx(0.6), "the headline stays one process each"
    assert measured.ratio_at(2) == pytest.approx(0.5)
    assert measured.scaling(Target.CEILING) == pytest.approx(1.5)
    assert measured.scaling(Target.INGEST) == pytest.approx(1.25)
    assert report_json(measured)["ratios_by_processes"] == {"1": pytest.approx(0.6), "2": pytest.approx(0.5)}
    assert "2 processes: ingest 750 req/s vs ceiling 1500 req/s" in render_table(measured)
    page = render_performance(measured)
    assert "- ingest: 600 req/s on 1 process(es), 750 on 2 (x1.25)" in page
    assert "Ingest over ceiling on 2 processes: 50%." in page

"""The pure parts of ``payments bench``'s pipeline phases and new options: the open-loop schedule,
end-to-end latencies from t0/t1/t2, per-agent throughput from /metrics pages, the report's tables, JSON
and page, the latency plot, and the options refused before anything starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from payments.pipeline import metrics
from payments.pipeline.bench import BenchOptions, Phase, parse_phases, run_problems
from payments.pipeline.bench_docs import render_performance
from payments.pipeline.bench_load import payment_success_body
from payments.pipeline.bench_pipeline import PipelineOptions
from payments.pipeline.bench_pipeline_load import create_body, open_loop_schedule
from payments.pipeline.bench_pipeline_observe import Outcome, end_to_end_latencies
from payments.pipeline.bench_pipeline_report import (
    CreateResult,
    MaxRate,
    OpenLoop,
    PhaseUsage,
    PipelineRun,
    agent_message_counts,
    agent_rows,
    agent_throughput,
    pipeline_rows,
    usage_rows,
)
from payments.pipeline.bench_plot import PLOT_NAME, write_latency_plot
from payments.pipeline.bench_processes import child_environment
from payments.pipeline.bench_report import Target, report_json
from payments.pipeline.bench_stats import LatencySummary, ProcessUsage
from payments.pipeline.cli import EXIT_CONFIGURATION, main
from tests.unit.test_bench import report, run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
USAGE = ProcessUsage(cpu_seconds=2.0, peak_rss_bytes=100 * 2**20)


def pipeline_run(workers: int, *, rate: float = 40.0, emailed: int = 100) -> PipelineRun:
    seconds = 100 / rate
    return PipelineRun(
        workers=workers,
        create=CreateResult(
            requests=200,
            seconds=4.0,
            statuses={"201": 199, "503": 1},
            failures={},
            latency_seconds=LatencySummary.of([0.1, 0.2, 0.3]),
            paid=199,
            usage=USAGE,
        ),
        maximum=MaxRate(
            payments=100,
            final=100,
            emailed=100,
            webhook_errors={},
            seconds_to_final=seconds,
            seconds_to_email=2 * seconds,
            window_seconds=2 * seconds,
            agents=agent_throughput({}, {("webhooks.process_webhooks", "ok"): 100.0}, 2 * seconds),
        ),
        half=OpenLoop(
            rate=rate / 2,
            payments=100,
            send_seconds=seconds * 2,
            max_lag_seconds=0.002,
            webhook_errors={},
            final=100,
            emailed=emailed,
            to_final=LatencySummary.of([0.010, 0.020, 0.040]),
            to_email=LatencySummary.of([0.100, 0.200, 0.400]),
        ),
        usage=(
            PhaseUsage(phase="maximum rate", seconds=seconds, processes={"worker-1": USAGE, "web": USAGE}),
        ),
    )


def full_report():
    ingest = report(run(Target.CEILING, 1, 10_000), run(Target.INGEST, 1, 6_000))
    method = ingest.method.model_copy(update={"pipeline": PipelineOptions().method()})
    runs = (pipeline_run(1, rate=40.0), pipeline_run(2, rate=60.0))
    return ingest.model_copy(update={"pipeline": runs, "method": method})


def test_an_open_loop_schedule_spaces_sends_evenly_at_the_rate():
    assert open_loop_schedule(4, rate=2.0) == [0.0, 0.5, 1.0, 1.5]
    assert open_loop_schedule(0, rate=10.0) == []
    with pytest.raises(ValueError, match="positive rate"):
        open_loop_schedule(3, rate=0.0)


def test_end_to_end_latency_runs_from_the_webhooks_200_to_final_and_to_email():
    t0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    outcomes = {
        "order-a": Outcome(final_at=t0 + timedelta(seconds=0.05), emailed_at=t0 + timedelta(seconds=0.5)),
        "order-b": Outcome(final_at=t0 + timedelta(seconds=0.1), emailed_at=None),
        "order-c": Outcome(final_at=None, emailed_at=None),
    }
    answered = {"order-a": t0.timestamp(), "order-b": t0.timestamp(), "order-c": t0.timestamp()}

    to_final, to_email = end_to_end_latencies(outcomes, answered)

    assert to_final == [pytest.approx(0.05), pytest.approx(0.1)]
    assert to_email == [pytest.approx(0.5)], "a payment not yet emailed has no to-email latency"


def test_agent_throughput_is_the_counter_deltas_of_every_worker_over_the_window():
    registry = CollectorRegistry()
    held = metrics.create(registry)
    held.agent_messages.labels("webhooks.process_webhooks", "ok").inc(5)
    before = agent_message_counts(generate_latest(registry).decode())
    held.agent_messages.labels("webhooks.process_webhooks", "ok").inc(20)
    held.agent_messages.labels("webhooks.process_webhooks", "retried").inc(2)
    held.agent_messages.labels("email.send_emails", "ok").inc(10)
    after = agent_message_counts(generate_latest(registry).decode())

    throughput = agent_throughput(before, after, seconds=2.0)

    assert after[("webhooks.process_webhooks", "ok")] == 25.0
    assert throughput["webhooks.process_webhooks"].outcomes == {"ok": 20.0, "retried": 2.0}
    assert throughput["webhooks.process_webhooks"].per_second == 11.0
    assert throughput["email.send_emails"].per_second == 5.0


def test_the_pipeline_tables_show_creates_the_maximum_rate_and_latency_at_half_of_it():
    runs = [pipeline_run(1, rate=40.0), pipeline_run(2, rate=60.0)]

    first = pipeline_rows(runs)[0]
    header, agents = agent_rows(runs)

    assert first[:7] == ("1", "50", "200.0 ms", "300.0 ms", "300.0 ms", "503: 1", "40.0")
    assert {"20.0/s", "40.0 ms", "400.0 ms"} <= set(first)
    assert header[1:3] == ("1 worker(s) msg/s", "2 worker(s) msg/s")
    assert agents == [("webhooks.process_webhooks", "20.0", "30.0", "ok: 100")]
    assert ("1", "maximum rate", "2.5", "worker-1", "80%", "100 MiB") in usage_rows(runs)


def test_the_json_carries_the_pipeline_with_its_derived_rates():
    raw = report_json(full_report())

    [one, two] = raw["pipeline"]
    assert (one["workers"], two["workers"]) == (1, 2)
    assert one["max_rate_payments_per_second"] == 40.0
    assert one["max_rate_emailed_per_second"] == 20.0
    assert one["create_errors"] == {"503": 1}
    assert one["half"]["to_final"]["p99"] == 0.04


def test_the_page_states_end_to_end_create_and_per_agent_numbers_and_shows_the_plot():
    page = render_performance(full_report(), plot_name=PLOT_NAME)

    assert "webhook -> final p99 **40.0 ms**" in page
    assert "webhook -> email p99 **400.0 ms**" in page
    assert "payment create p99 **300.0 ms**" in page
    assert "| webhooks.process_webhooks | 20.0 | 30.0 | ok: 100 |" in page
    assert f"]({PLOT_NAME})" in page
    assert "The maximum rate went from 40.0 to 60.0 payments/s (x1.50)" in page
    assert "`FRAUD_RULES={}` and `RATE_LIMITS_ENABLED=false`" in page
    assert "`withhold_webhooks`" in page
    assert "**The email path sets the pace, 1 worker(s).**" in page


def test_a_run_whose_payments_were_not_all_emailed_is_a_problem():
    assert run_problems(pipeline_run(1)) == [
        "pipeline with 1 worker(s): creates not answered 201: {'503': 1}"
    ]
    assert "half-rate: of 100 payments 100 final, 97 emailed" in run_problems(pipeline_run(1, emailed=97))[1]


def test_the_plot_is_a_png_of_every_curve(tmp_path):
    path = tmp_path / PLOT_NAME

    write_latency_plot(full_report(), path)

    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000, "two panels with curves, not an empty canvas"


def test_the_plot_of_a_run_without_the_pipeline_still_draws_ingest(tmp_path):
    path = tmp_path / PLOT_NAME

    write_latency_plot(report(run(Target.CEILING, 1, 10_000), run(Target.INGEST, 1, 6_000)), path)

    assert path.read_bytes().startswith(PNG_MAGIC)


def test_a_webhook_for_an_existing_payment_names_its_order():
    body = payment_success_body(3, key_prefix="bench-x", at=datetime.now(UTC), order_id="order_abc")

    assert b'"order_id": "order_abc"' in body
    assert create_body(3)["amount"] == "1499.00"
    assert b'"order_amount": 1499.0' in body, "the webhook's amount matches the payment's"


def test_a_child_environment_drops_the_file_form_of_what_it_sets():
    env = child_environment(
        {"RABBITMQ_URL_FILE": "/run/secret", "REDIS_URL": "redis://x"}, RABBITMQ_URL="amqp://y"
    )

    assert env == {"REDIS_URL": "redis://x", "RABBITMQ_URL": "amqp://y"}


def test_phases_are_parsed_in_running_order_and_unknown_ones_named():
    assert parse_phases(["pipeline", "ingest"]) == (Phase.INGEST, Phase.PIPELINE)
    with pytest.raises(ValueError, match="--phases takes ingest, pipeline, not e2e"):
        parse_phases(["e2e"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "--concurrency"),
        ({"repeat": 0}, "--repeat"),
        ({"requests": 0}, "--requests"),
        ({"duration_seconds": 0}, "--duration"),
        ({"warmup_seconds": -1}, "--warmup"),
        ({"phases": ()}, "--phases"),
        ({"processes": (2, 1)}, "ascending"),
        ({"processes": (0, 1)}, "from 1 to 4"),
        ({"processes": (1, 5)}, "from 1 to 4"),
        ({"pipeline": PipelineOptions(workers=(1, 1))}, "--workers"),
        ({"pipeline": PipelineOptions(workers=(9,))}, "--workers"),
        ({"pipeline": PipelineOptions(payments=1)}, "--payments"),
        ({"pipeline": PipelineOptions(users=0)}, "--users"),
    ],
)
def test_options_out_of_range_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        BenchOptions(**options)


@pytest.mark.parametrize(
    "arguments",
    [["--processes", "0"], ["--workers", "2,1"], ["--payments", "1"], ["--phases", "everything"]],
)
def test_the_command_line_refuses_bad_options_before_starting_anything(arguments, capsys):
    assert main(["bench", *arguments]) == EXIT_CONFIGURATION
    assert capsys.readouterr().err.startswith("payments bench: ")


def test_a_list_of_counts_that_is_not_numbers_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--workers", "one,two"])

    assert exit_.value.code == 2
    assert "not a comma-separated list of counts" in capsys.readouterr().err

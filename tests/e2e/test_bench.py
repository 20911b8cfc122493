"""``payments bench`` end to end in a tiny form, every phase, on the test run's services. Speed is never
asserted: only that everything was measured and that nothing was lost: both targets on one and two
processes with every webhook accepted and queued; with one and two workers, every payment created,
finalized and emailed (checked again in PostgreSQL), create latencies and per-agent throughput present;
the page and the plot written; the run's vhosts deleted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import asyncpg
import pytest

PAYMENTS = 6
WORKERS = (1, 2)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(200)
def test_a_tiny_bench_measures_every_phase_and_loses_nothing(migrated_dsn, amqp_url, redis_url, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": migrated_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    ingest = ["--duration", "1", "--warmup", "0.2", "--concurrency", "4", "--repeat", "1"]
    processes = ["--processes", "1,2", "--workers", "1,2"]
    pipeline = ["--payments", str(PAYMENTS), "--users", "2"]
    outputs = ["--json", "bench.json", "--write-docs", "PERFORMANCE.md"]

    bench = subprocess.run(
        [sys.executable, "-m", "payments", "bench", *ingest, *processes, *pipeline, *outputs],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert bench.returncode == 0, bench.stdout + bench.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    _assert_ingest(report)
    _assert_pipeline(report)
    succeeded = asyncio.run(_bench_payments_succeeded(migrated_dsn, report["run_id"]))
    assert succeeded == 2 * PAYMENTS * len(WORKERS), "checked in PostgreSQL, apart from the bench"
    assert "## Results" in (tmp_path / "PERFORMANCE.md").read_text()
    assert (tmp_path / "performance-latency.png").read_bytes().startswith(PNG_MAGIC)
    vhosts = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, timeout=60)
    assert len(report["vhosts"]) == 2
    assert not set(report["vhosts"]) & set(vhosts.stdout.split()), "the run's vhosts are deleted"


def _assert_ingest(report: dict) -> None:
    measured = [(run["target"], run["processes"]) for run in report["runs"]]
    assert measured == [("ceiling", 1), ("ingest", 1), ("ceiling", 2), ("ingest", 2)]
    for run in report["runs"]:
        assert run["requests_per_second"] > 0
        assert run["error_count"] == 0, run["errors"]
        assert run["queued"] == run["load"]["accepted_total"]
        assert len(run["servers"]) == run["processes"]
        assert all(server["cpu_seconds"] > 0 for server in run["servers"]), "the load reached every server"
    assert report["ratio"] > 0
    assert set(report["ratios_by_processes"]) == {"1", "2"}


def _assert_pipeline(report: dict) -> None:
    assert [run["workers"] for run in report["pipeline"]] == list(WORKERS)
    for run in report["pipeline"]:
        assert run["create_errors"] == {}
        assert run["create"]["paid"] == 2 * PAYMENTS
        assert run["create"]["latency_seconds"]["count"] == 2 * PAYMENTS
        for phase in (run["maximum"], run["half"]):
            assert phase["webhook_errors"] == {}
            assert phase["final"] == phase["emailed"] == PAYMENTS
        assert run["max_rate_payments_per_second"] > 0
        assert run["half"]["to_final"]["count"] == run["half"]["to_email"]["count"] == PAYMENTS
        assert run["half"]["to_email"]["p50"] >= run["half"]["to_final"]["p50"] > 0
        assert run["maximum"]["agents"]["webhooks.process_webhooks"]["outcomes"]["ok"] >= PAYMENTS
        assert run["maximum"]["agents"]["email.send_emails"]["per_second"] > 0
        workers = {name for phase in run["usage"] for name in phase["processes"] if name.startswith("worker")}
        assert len(workers) == run["workers"]


async def _bench_payments_succeeded(dsn: str, run_id: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM payments WHERE user_id LIKE $1 AND status = 'SUCCESS'",
                f"bench-{run_id}-user-%",
            )
        )
    finally:
        await connection.close()

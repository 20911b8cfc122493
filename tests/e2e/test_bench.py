"""``payments bench`` end to end in a tiny form, on the test run's services. Speed is never asserted:
only that both targets were measured, every request was accepted, and every 200 was queued."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_a_tiny_bench_measures_both_targets_with_every_webhook_accepted_and_queued(
    migrated_dsn, amqp_url, redis_url, tmp_path
):
    env = {
        **os.environ,
        "DATABASE_URL": migrated_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
    }
    arguments = ["--duration", "1", "--warmup", "0.2", "--concurrency", "4", "--repeat", "1"]
    outputs = ["--json", "bench.json", "--write-docs", "PERFORMANCE.md"]

    bench = subprocess.run(
        [sys.executable, "-m", "payments", "bench", *arguments, *outputs],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
    )

    assert bench.returncode == 0, bench.stdout + bench.stderr
    report = json.loads((tmp_path / "bench.json").read_text())
    assert [run["target"] for run in report["runs"]] == ["ceiling", "ingest"]
    for run in report["runs"]:
        assert run["requests_per_second"] > 0
        assert run["error_count"] == 0, run["errors"]
        assert run["queued"] == run["load"]["accepted_total"]
        assert run["server"]["cpu_seconds"] > 0
        assert run["server"]["peak_rss_bytes"] > 0
    assert report["ratio"] > 0
    assert report["machine"]["cores"] >= 1
    assert "ingest" in bench.stdout
    assert "## Results" in (tmp_path / "PERFORMANCE.md").read_text()
    vhosts = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, timeout=60)
    assert f"payments-bench-{report['run_id']}" not in vhosts.stdout.split(), "the run's vhost is deleted"

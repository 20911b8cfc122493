"""The ``payments`` command line as an operator runs it, against the real services."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime

import asyncpg

from payments.bridges.postgres.migrate import load_migrations
from payments.bridges.postgres.pool import open_pool
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.audit.model import AuditEntry


async def payments(*arguments: str, env: dict[str, str], cwd=None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payments",
        *arguments,
        env={**os.environ, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    return process.returncode or 0, output.decode()


async def test_two_migrate_commands_at_once_both_succeed_and_apply_each_migration_once(scratch_dsn):
    env = {"DATABASE_URL": scratch_dsn, "LOG_LEVEL": "WARNING"}

    results = await asyncio.gather(
        payments("migrate", "--create-database", env=env), payments("migrate", "--create-database", env=env)
    )

    assert [code for code, _ in results] == [0, 0], results
    connection = await asyncpg.connect(scratch_dsn)
    try:
        versions = [
            row["name"] for row in await connection.fetch("SELECT name FROM schema_migrations ORDER BY 1")
        ]
    finally:
        await connection.close()
    assert versions == [migration.name for migration in load_migrations()]
    applied = sorted(int(re.search(r"applied (\d+) migration", output)[1]) for _, output in results)
    assert applied == [0, len(versions)], "one run applied everything, the other nothing"


async def test_topology_declared_twice_by_the_command_succeeds_both_times(amqp_url):
    env = {"RABBITMQ_URL": amqp_url, "LOG_LEVEL": "WARNING"}

    first = await payments("topology", env=env)
    second = await payments("topology", env=env)

    assert first == (0, "topology declared\n")
    assert second == (0, "topology declared\n")


async def test_a_missing_broker_stops_the_command_with_a_clear_message_and_no_password(migrated_dsn):
    env = {"RABBITMQ_URL": "amqp://operator:hunter2-secret@127.0.0.1:1/", "LOG_LEVEL": "WARNING"}

    code, output = await payments("topology", env=env)

    assert code == 3
    assert "cannot start" in output
    assert "hunter2-secret" not in output


async def test_the_demo_starts_the_stack_and_reports_every_check_passed(
    scratch_dsn, amqp_url, redis_url, tmp_path, unused_tcp_port_factory
):
    web_port, sandbox_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    env = {
        "DATABASE_URL": scratch_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "PORT": str(web_port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "WORKER_METRICS_PORT": str(unused_tcp_port_factory()),
        "SANDBOX_PORT": str(sandbox_port),
        "CASHFREE_BASE_URL": f"http://127.0.0.1:{sandbox_port}/pg",
        "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{web_port}/api/v1/webhooks/cashfree",
        # The demo's own mail sink listens here; a port of its own, so runs never share one.
        "SMTP_URL": f"smtp://127.0.0.1:{unused_tcp_port_factory()}",
    }

    code, output = await payments("demo", env=env, cwd=tmp_path)

    assert code == 0, output
    assert "demo: all checks passed" in output
    assert "[BAD]" not in output
    assert "[ok ] a second attempt succeeds: FAILED -> SUCCESS: SUCCESS" in output
    for route in ("/health ", "/health/database ", "/health/redis ", "/health/queues "):
        assert f"GET {route}-> 200" in output
    # Fraud screening on its default rules: the ordinary customers pass, the burst from one address
    # (drawn afresh each run) is stopped after ip_per_minute's 10, and admins see the alert live.
    burst = re.search(
        r"\[ok \] the burst from (198\.1[89]\.\d+\.\d+) is stopped after 10: "
        r"201 PENDING x10, 403 payment_blocked x4\n",
        output,
    )
    assert burst, output
    assert (
        "[ok ]   ... the 4 refused payments are stored CANCELLED (GET /api/v1/payments/{id}): "
        "CANCELLED (blocked by fraud screening) x4\n"
    ) in output
    alerted = f"[ok ] admins are alerted once (GET /api/v1/admin/alerts): [('fraud_block', 'ip:{burst[1]}')]"
    assert alerted in output
    assert "[ok ]   ... and no customer of the day raised a fraud alert: []" in output
    assert "[ok ]   ... and the same alert arrived live on the stream: alr_" in output
    # A payout settles one payment of two; the reconciliation run reports exactly the other.
    assert (
        "settlement and reconciliation "
        "(Cashfree settlement -> webhook -> SETTLED; reconciliation run -> report):\n"
    ) in output
    settled = re.search(r"\[ok \] Asha Rao pays 799\.00 INR \((pay_\w+)\.\.\.\): SUCCESS\n", output)
    unsettled = re.search(r"\[ok \] Ravi Menon pays 349\.00 INR \((pay_\w+)\.\.\.\): SUCCESS\n", output)
    assert settled, output
    assert unsettled, output
    assert f"the sandbox settles {settled[1]}... alone: payout " in output
    assert "799.00 - fee 15.98 - GST 2.88 = 780.14 INR" in output
    assert (
        "[ok ]   ... SETTLEMENT_SUCCESS webhook -> settlement agent: (status, settlementStatus): "
        "('SETTLED', 'SETTLED')\n"
    ) in output
    assert f"[ok ]   ... and {unsettled[1]}..., left out of the payout: SUCCESS\n" in output
    assert re.search(r"\[ok \] an admin runs a reconciliation of \[.+\): \(201, 'succeeded'\)\n", output)
    missing = re.search(
        r"\[ok \]   \.\.\. its report holds one finding, the payment left out: "
        r"\[\('missing_settlement', '(pay_\w+)'\)\]\n        missing_settlement:(pay_\w+): \{'settle_by'",
        output,
    )
    assert missing, output
    assert missing[1] == missing[2], output
    assert missing[1].startswith(unsettled[1]), output
    report = rf"http://127\.0\.0\.1:{web_port}/api/v1/admin/reconciliation/runs/rec_\w+/report\.json"
    assert re.search(rf"  report   {report}\n", output), output
    assert re.search(rf"--admin\)\" {report}\n", output), output
    assert f"admin page         http://127.0.0.1:{web_port}/admin " in output
    assert "alerts, fraud_signals" in output
    assert (tmp_path / "var" / "demo" / "worker.log").read_text().count('"worker started') == 1


async def test_audit_verify_names_a_row_written_behind_the_logs_back(scratch_dsn):
    env = {"DATABASE_URL": scratch_dsn, "LOG_LEVEL": "WARNING"}
    assert (await payments("migrate", "--create-database", env=env))[0] == 0
    connection = await asyncpg.connect(scratch_dsn)
    try:
        await connection.execute(
            "INSERT INTO audit_logs "
            "(action, resource_type, resource_id, trace_id, request_id, created_at, hash) "
            "VALUES ('x', 'y', 'z', 't', 'r', now(), repeat('0', 64))"
        )
        broken = await payments("audit-verify", env=env)
    finally:
        await connection.close()

    assert broken[0] == 1
    assert "audit chain BROKEN at row" in broken[1]


async def test_audit_verify_passes_on_a_chain_written_by_the_application(scratch_dsn):
    env = {"DATABASE_URL": scratch_dsn, "LOG_LEVEL": "WARNING"}
    assert (await payments("migrate", "--create-database", env=env))[0] == 0
    async with open_pool(scratch_dsn, min_size=1, max_size=2, command_timeout=10) as pool:
        for n in range(3):
            async with pg_unit_of_work(pool) as uow:
                await uow.audit.append(
                    AuditEntry(
                        actor_id="ops",
                        action="payment.open",
                        resource_type="payment",
                        resource_id=f"pay_{n}",
                        before_state=None,
                        after_state={"status": "PENDING", "amount": "499.00"},
                        ip_address=None,
                        user_agent=None,
                        trace_id="t" * 32,
                        request_id="r",
                        created_at=datetime.now(UTC),
                    )
                )

    code, output = await payments("audit-verify", env=env)

    assert (code, output) == (0, "audit chain intact: 3 rows\n")

"""What the recovery tests (``test_recovery.py``) share: restarting the real services, signed deliveries,
and the database-side checks of "no half-written money state".

Restarts go through the services' own tools, as an operator would: ``rabbitmqctl stop_app`` /
``start_app`` for the broker, ``pg_ctlcluster ... restart`` (a fast shutdown: sessions are cut and
open transactions rolled back) for PostgreSQL, ``FLUSHDB`` for Redis.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import asyncpg

from payments.pipeline import bootstrap
from payments.pipeline.topology import ALERTS_PAYMENTS, FRAUD_PAYMENTS
from tests.conftest import POSTGRES_ADMIN_DSN
from tests.e2e.isolation import rabbitmqctl
from tests.e2e.test_replay_rebuilds_tables import routed_to
from tests.waiting import eventually

#: The agents ``payments replay`` feeds: they keep the fraud and alerts tables.
REPLAYABLE: Final = ("fraud.watch_payments", "alerts.watch_failures")
#: Refund states that hold balance (what the refund engine's balance check counts).
HOLDING_REFUND_STATES: Final = ("INITIATED", "PROCESSING", "SUCCESS")


# --- The services: restarts with a deadline --------------------------------------------------------


async def start_broker() -> None:
    """Start the RabbitMQ application (after ``rabbitmqctl stop_app``) and wait until it serves again."""
    await asyncio.to_thread(rabbitmqctl, "start_app")
    await asyncio.to_thread(rabbitmqctl, "await_startup")


async def restart_postgres(*, deadline_seconds: float = 60.0) -> None:
    """Restart the PostgreSQL server and return once it accepts connections again.

    The restart concerns the whole server, so this never returns with it down: whatever the cluster
    tool did, the cluster is started if it is not running, and the wait for it has a deadline.
    """
    try:
        await asyncio.to_thread(_pg_ctlcluster, "restart", check=True)
    finally:
        # "start" on a running cluster exits 2 and changes nothing; only a stopped one is started.
        await asyncio.to_thread(_pg_ctlcluster, "start", check=False)
        await eventually(
            _postgres_answers, timeout=deadline_seconds, interval=0.1, what="PostgreSQL to accept connections"
        )


def _pg_ctlcluster(action: str, *, check: bool) -> None:
    [version] = [path.name for path in Path("/etc/postgresql").iterdir()]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    subprocess.run(command, check=check, capture_output=True, timeout=60)


async def _postgres_answers() -> bool:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=2)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        return False
    try:
        return bool(await connection.fetchval("SELECT true"))
    finally:
        await connection.close()


async def pool_lends(pool: asyncpg.Pool, count: int, *, timeout: float) -> bool:
    """Whether ``count`` connections of ``pool`` can be borrowed at once within ``timeout`` seconds."""
    borrowed = []
    try:
        async with asyncio.timeout(timeout):
            for _ in range(count):
                borrowed.append(await pool.acquire())
    except TimeoutError:
        return False
    finally:
        for connection in borrowed:
            await pool.release(connection)
    return True


# --- The stack over HTTP: deliveries, client retries, DLQs -----------------------------------------


async def deliver(stack: Any, body: bytes, key: str) -> int:
    """POST a delivery as Cashfree would (signed now, its ``x-idempotency-key``); the status answered."""
    response = await stack.api.post(
        "/api/v1/webhooks/cashfree", data=body, headers=stack.signed(body, idempotency_key=key)
    )
    return int(response.status)


def event_id(idempotency_key: str) -> str:
    """The ``webhook_logs.event_id`` ingest derives from a delivery's ``x-idempotency-key``, for keys of
    letters, digits and ``-`` (others are percent-encoded: ``bridges/cashfree/webhooks.py``)."""
    return f"cashfree:idem:{idempotency_key}"


async def answered(call: Callable[[], Awaitable[Any]], *, ok: int, what: str) -> dict[str, Any]:
    """Call until the answer is ``ok``, as a client retries (same Idempotency-Key) after 202, 409 or 503.

    Any other status fails the test: an outage must look like "try again", never like an error.
    """

    async def attempt() -> dict[str, Any] | None:
        response = await call()
        if response.status == ok:
            return dict(await response.json())
        assert response.status in {202, 409, 503}, (response.status, await response.text())
        return None

    return await eventually(attempt, timeout=60, interval=0.2, what=what)


async def dead_letter_depths(stack: Any) -> dict[str, int]:
    """Every DLQ of the stack's vhost and how many messages it holds (``GET /api/v1/admin/dlq``)."""
    response = await stack.api.get("/api/v1/admin/dlq", headers=stack.headers("ops", admin=True))
    assert response.status == 200, await response.text()
    return {row["queue"]: row["messages"] for row in (await response.json())["queues"]}


async def dead_letters(stack: Any) -> dict[str, int]:
    """The DLQs of the test's vhost that hold anything: none may, as nothing here is poison."""
    return {queue: depth for queue, depth in (await dead_letter_depths(stack)).items() if depth}


# --- The database: money state and webhook processing ----------------------------------------------


async def payment_row(stack: Any, payment_id: str) -> Any:
    [row] = await stack.rows(
        "SELECT status, amount, gateway_payment_id FROM payments WHERE payment_id = $1", payment_id
    )
    return row


async def status_of(stack: Any, payment_id: str) -> str:
    return str((await payment_row(stack, payment_id))["status"])


async def is_status(stack: Any, payment_id: str, status: str) -> bool:
    return await status_of(stack, payment_id) == status


def expected_status(attempts: list[tuple[str, str]]) -> str:
    """The payment state the sandbox's attempts call for (before any refund)."""
    statuses = {status for _, status in attempts}
    if "SUCCESS" in statuses:
        return "SUCCESS"
    return "FAILED" if statuses else "PENDING"


async def recorded_attempts(stack: Any, payment_id: str) -> set[tuple[str, str]]:
    """(gateway attempt id, status) of every attempt the database holds for a payment."""
    rows = await stack.rows(
        "SELECT provider_transaction_id, status FROM transactions WHERE payment_id = $1", payment_id
    )
    return {(row["provider_transaction_id"], row["status"]) for row in rows}


async def success_events(stack: Any, payment_ids: list[str]) -> dict[str, int]:
    """How many ``payment.success`` events each payment put in the outbox (absent: none)."""
    rows = await stack.rows(
        "SELECT payload->>'paymentId' AS id, count(*) AS n FROM outbox "
        "WHERE routing_key = 'payment.success' AND payload->>'paymentId' = ANY($1::text[]) GROUP BY 1",
        payment_ids,
    )
    return {row["id"]: row["n"] for row in rows}


async def over_refunded_payments(stack: Any) -> list[Any]:
    """Payments (in the whole database) whose balance-holding refunds add up to more than they captured."""
    rows: list[Any] = await stack.rows(
        "SELECT p.payment_id, p.amount, sum(r.amount) AS refunded FROM payments p "
        "JOIN refunds r ON r.payment_id = p.payment_id AND r.status = ANY($1::text[]) "
        "GROUP BY p.payment_id, p.amount HAVING sum(r.amount) > p.amount",
        list(HOLDING_REFUND_STATES),
    )
    return rows


async def outbox_drained(stack: Any) -> bool:
    """Whether every outbox event (of the whole database) has been published."""
    [row] = await stack.rows("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    return int(row["n"]) == 0


async def log_states(stack: Any, event_ids: list[str]) -> dict[str, int]:
    """How many of these webhook events are in each state of the log ("NONE": not taken yet)."""
    rows = await stack.rows(
        "SELECT processing_status, count(*) AS n FROM webhook_logs "
        "WHERE event_id = ANY($1::text[]) GROUP BY 1",
        event_ids,
    )
    states = {row["processing_status"]: int(row["n"]) for row in rows}
    return {**states, "NONE": len(event_ids) - sum(states.values())}


async def succeeded(stack: Any, event_ids: list[str]) -> int:
    """How many of these webhook events the log holds as SUCCESS."""
    rows = await stack.rows(
        "SELECT count(*) AS n FROM webhook_logs "
        "WHERE processing_status = 'SUCCESS' AND event_id = ANY($1::text[])",
        event_ids,
    )
    return int(rows[0]["n"])


# --- The tables: what the agents counted, and replay -----------------------------------------------


def handled(stack: Any, agent: str) -> float:
    value = stack.resources.registry.get_sample_value(
        "payments_agent_messages_total", {"agent": agent, "outcome": "ok"}
    )
    return value or 0.0


async def routed_events(stack: Any, user_prefix: str) -> dict[str, int]:
    """How many of these users' outbox events each replayable agent's queue receives."""
    rows = await stack.rows(
        "SELECT routing_key FROM outbox WHERE payload->>'userId' LIKE $1", f"{user_prefix}%"
    )
    keys = [row["routing_key"] for row in rows]
    return {
        "fraud.watch_payments": sum(routed_to(FRAUD_PAYMENTS.bindings, key) for key in keys),
        "alerts.watch_failures": sum(routed_to(ALERTS_PAYMENTS.bindings, key) for key in keys),
    }


async def tables_caught_up(stack: Any, user_prefix: str) -> bool:
    wanted = await routed_events(stack, user_prefix)
    return all(handled(stack, agent) >= count for agent, count in wanted.items())


async def replay_tables(stack: Any) -> None:
    report = await bootstrap.run_replay(
        stack.settings, start=0, end=None, agents=list(REPLAYABLE), progress=lambda _: None
    )
    assert report.read > 0

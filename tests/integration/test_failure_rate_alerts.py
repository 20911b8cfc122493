"""Failure-rate alerts on the real stores: tables in Redis, alerts, inbox and outbox in PostgreSQL.

Every test pays with a payment method of its own (``upi`` plus a random suffix) and keeps its tables
under a Redis prefix of its own, so tests sharing the run's database and Redis never meet.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from payments.agents.alerts import EventTables
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.bridges.redis.tables import RedisWindowStore
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import load_settings
from tests.alert_events import again, payment_outcome, run_alerts_agent
from tests.fakes.broker import FakeMessage
from tests.fakes.context import NOW, fake_context

pytestmark = pytest.mark.integration

LIMITS = {
    "ALERT_WINDOW_SECONDS": "300",
    "ALERT_FAILURE_RATE_THRESHOLD": "0.5",
    "ALERT_MIN_VOLUME": "10",
    "ALERT_COOLDOWN_SECONDS": "900",
}
#: Alert rows about one subject, and the admin mails announcing them.
ALERT_ROWS = "SELECT alert_id, raised_at FROM alerts WHERE kind = 'payment_failure_rate' AND subject = $1"
MAILS = """
SELECT payload->>'alertId' AS alert_id FROM outbox
WHERE routing_key = 'email.admin.alert' AND payload->>'subject' = $1
"""


class Run:
    """The alerts agent of one test, on the run's database and this test's Redis prefix."""

    def __init__(self, pool: asyncpg.Pool, client: Redis, prefix: str) -> None:
        self.pool = pool
        self.tables = RedisWindowStore(client, key_prefix=prefix)
        self.method = f"upi{uuid.uuid4().hex[:8]}"
        self.subject = f"method:{self.method}"

    def context(self, **limits: str) -> AgentContext:
        return fake_context(
            unit_of_work=lambda: pg_unit_of_work(self.pool),
            tables=self.tables,
            settings=load_settings({**LIMITS, **limits}),
        )

    def outcome(self, *, succeeded: bool, n: int, seconds: int) -> FakeMessage:
        at = NOW - timedelta(minutes=1) + timedelta(seconds=seconds)
        return payment_outcome(succeeded=succeeded, method=self.method, n=n, at=at)

    def spike(self) -> list[FakeMessage]:
        """4 successes then 8 failures: the rate passes 0.5 at the 6th failure (6 of 10)."""
        ok = [self.outcome(succeeded=True, n=n, seconds=n) for n in range(4)]
        failed = [self.outcome(succeeded=False, n=10 + n, seconds=10 + n) for n in range(8)]
        return [*ok, *failed]

    async def alerts(self) -> list[asyncpg.Record]:
        return list(await self.pool.fetch(ALERT_ROWS, self.subject))

    async def mails(self) -> list[str]:
        return [row["alert_id"] for row in await self.pool.fetch(MAILS, self.subject)]

    async def snapshot(self, context: AgentContext) -> dict[str, Any]:
        tables = EventTables.of(context)
        return {table.name: await table.snapshot() for table in (tables.succeeded, tables.failed)}


@pytest.fixture
def run(pg_pool: asyncpg.Pool, client: Redis, prefix: str) -> Run:
    return Run(pg_pool, client, prefix)


async def test_a_failure_rate_spike_raises_one_alert_and_one_admin_mail(run: Run) -> None:
    await run_alerts_agent(run.context(), *run.spike())

    [row] = await run.alerts()
    assert row["raised_at"] == NOW - timedelta(minutes=1) + timedelta(seconds=15)  # the 6th failure
    assert await run.mails() == [row["alert_id"]]


async def test_more_failures_within_the_cooldown_raise_nothing_more(run: Run) -> None:
    await run_alerts_agent(run.context(), *run.spike())
    more = [run.outcome(succeeded=False, n=100 + n, seconds=60 + 30 * n) for n in range(4)]

    await run_alerts_agent(run.context(), *more)

    assert len(await run.alerts()) == 1
    assert len(await run.mails()) == 1


async def test_the_same_events_processed_twice_change_no_table_and_raise_nothing(run: Run) -> None:
    context = run.context()
    messages = run.spike()
    await run_alerts_agent(context, *messages)
    tables, alerts, mails = await run.snapshot(context), await run.alerts(), await run.mails()

    await run_alerts_agent(context, *[again(m) for m in messages])

    assert await run.snapshot(context) == tables
    assert tables["alerts.payments_failed"][run.method]
    assert await run.alerts() == alerts
    assert await run.mails() == mails


async def test_a_replay_into_empty_tables_rebuilds_them_and_raises_nothing_again(run: Run) -> None:
    live = run.context()
    messages = run.spike()
    await run_alerts_agent(live, *messages)
    tables, alerts = await run.snapshot(live), await run.alerts()
    event_tables = EventTables.of(live)
    for table in (event_tables.succeeded, event_tables.failed):
        await table.clear()
    assert await run.snapshot(live) == {"alerts.payments_succeeded": {}, "alerts.payments_failed": {}}

    # No cooldown on the replay: only the inbox stands between it and the 7th and 8th failures.
    await run_alerts_agent(run.context(ALERT_COOLDOWN_SECONDS="0"), *[again(m) for m in messages])

    assert await run.snapshot(live) == tables
    assert await run.alerts() == alerts

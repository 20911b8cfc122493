"""Fraud screening on the real stores: velocity tables in Redis; payments, signals, alerts in PostgreSQL.

Each test creates payments from an IP of its own and keeps its tables under a Redis prefix of its own,
so tests sharing the run's database and Redis never meet.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from functools import partial

import asyncpg
import pytest
from redis.asyncio import Redis

from payments.agents.fraud_tables import FraudTables, TableFraudScreen
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.bridges.redis.tables import RedisWindowStore
from payments.domain.fraud.rules import FraudRules, Subject, VelocityRule
from payments.domain.fraud.screen import PaymentAttempt, PaymentBlocked
from payments.domain.gateway import GatewayOrder, OrderRequest
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, CreatePayment
from payments.domain.payment.model import CustomerDetails
from payments.domain.payment.service import BLOCKED_REASON, PaymentService
from payments.domain.payment.states import PaymentState
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.unit.test_payment_service import NOW

pytestmark = pytest.mark.integration

LIMIT = 5
COOLDOWN = timedelta(seconds=30)
RULES = FraudRules(
    velocity=(
        VelocityRule(name="ip_per_minute", subject=Subject.IP, window_seconds=60, limit=Decimal(LIMIT)),
    )
)
CIPHER = PiiCipher(os.urandom(32))

PAYMENTS_FROM = "SELECT payment_id, status, failure_reason, client_ip FROM payments WHERE client_ip = $1"
SIGNALS_FOR = """
SELECT payment_id, rule, verdict, subject_kind, subject, observed, threshold FROM fraud_signals
WHERE payment_id = ANY($1::text[])
"""
ALERTS_ABOUT = "SELECT alert_id, severity, title FROM alerts WHERE kind = 'fraud_block' AND subject = $1"
MAILS_ABOUT = """
SELECT payload->>'alertId' AS alert_id FROM outbox
WHERE routing_key = 'email.admin.alert' AND payload->>'subject' = $1
"""


class SharedDatabaseGateway(InMemoryGateway):
    """Order ids made unique with ``tag``: gateway order ids are UNIQUE in the run's shared database."""

    def __init__(self, tag: str) -> None:
        super().__init__(now=NOW)
        self.tag = tag

    async def create_order(self, request: OrderRequest) -> GatewayOrder:
        order = await super().create_order(request)
        return replace(order, gateway_order_id=f"{self.tag}_{order.gateway_order_id}")


def digest(value: str, *, kind: str) -> str:
    return CIPHER.lookup_hash(value, kind=kind).hex()


class Run:
    """One test's payment service, screening against Redis tables under the test's own prefix."""

    def __init__(self, pool: asyncpg.Pool, client: Redis, prefix: str) -> None:
        self.pool = pool
        self.clock = FixedClock(NOW)
        self.ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        self.subject = f"ip:{self.ip}"
        self.suffix = uuid.uuid4().hex[:10]
        self.tables = FraudTables(
            RedisWindowStore(client, key_prefix=prefix), rules=RULES, clock=self.clock, digest=digest
        )
        self.service = PaymentService(
            unit_of_work=partial(pg_unit_of_work, pool, cipher=CIPHER),
            gateway=SharedDatabaseGateway(self.suffix),
            locks=InMemoryPaymentLocks(),
            clock=self.clock,
            fraud=TableFraudScreen(self.tables),
            fraud_alert_cooldown=COOLDOWN,
        )

    def command(self, n: int) -> CreatePayment:
        payment_id = f"pay_{self.suffix}_{n}"
        return CreatePayment(
            payment_id=payment_id,
            order_id=f"ord_{self.suffix}_{n}",
            user_id=f"user_{self.suffix}_{n}",
            amount=Money.of("499.00", "INR"),
            customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone="9876543210"),
            device_fingerprint=f"dev-{self.suffix}-{n}",
            actor=Actor(
                actor_id=f"user_{self.suffix}_{n}", ip_address=self.ip, trace_id="a" * 32, request_id="r"
            ),
        )

    async def create(self, n: int) -> PaymentBlocked | None:
        try:
            await self.service.create(self.command(n))
        except PaymentBlocked as blocked:
            return blocked
        return None

    async def ip_count(self) -> int:
        """The IP's count in the table now, read by re-screening a payment already counted (a no-op)."""
        attempt = PaymentAttempt(
            payment_id=f"pay_{self.suffix}_1",
            user_id=f"user_{self.suffix}_1",
            amount=Money.of("499.00", "INR"),
            at=self.clock.now(),
            ip_address=self.ip,
        )
        return (await self.tables.record_attempt(attempt)).values["ip_per_minute"]


@pytest.fixture
def run(pg_pool, client, prefix) -> Run:
    return Run(pg_pool, client, prefix)


async def test_a_burst_from_one_ip_is_blocked_past_the_limit_and_alerted_once(run, pg_pool):
    outcomes = await asyncio.gather(*(run.create(n) for n in range(1, LIMIT + 4)))

    blocked_ids = sorted(
        run.command(n).payment_id for n, outcome in enumerate(outcomes, start=1) if outcome is not None
    )
    assert sum(outcome is None for outcome in outcomes) == LIMIT
    assert len(blocked_ids) == 3
    assert all(
        isinstance(o, PaymentBlocked) and o.code == "payment_blocked" for o in outcomes if o is not None
    )

    rows = {row["payment_id"]: row for row in await pg_pool.fetch(PAYMENTS_FROM, run.ip)}
    assert len(rows) == LIMIT + 3
    for payment_id in blocked_ids:
        assert (rows[payment_id]["status"], rows[payment_id]["failure_reason"]) == (
            "CANCELLED",
            BLOCKED_REASON,
        )
    opened = [row for row in rows.values() if row["status"] == PaymentState.PENDING.value]
    assert len(opened) == LIMIT

    signals = await pg_pool.fetch(SIGNALS_FOR, blocked_ids)
    assert sorted(row["payment_id"] for row in signals) == blocked_ids
    for row in signals:
        assert (row["rule"], row["verdict"], row["subject_kind"], row["subject"]) == (
            "ip_per_minute",
            "block",
            "ip",
            run.ip,
        )
        assert row["threshold"] == LIMIT
        assert row["observed"] > LIMIT
    assert sorted(row["observed"] for row in signals) == [LIMIT + 1, LIMIT + 2, LIMIT + 3]

    [alert] = await pg_pool.fetch(ALERTS_ABOUT, run.subject)
    assert alert["severity"] == "critical"
    assert alert["title"].startswith(f"Payments from ip {run.ip} blocked: ")
    mails = await pg_pool.fetch(MAILS_ABOUT, run.subject)
    assert [mail["alert_id"] for mail in mails] == [alert["alert_id"]]


async def test_the_next_block_after_the_cooldown_raises_a_second_alert(run, pg_pool):
    for n in range(1, LIMIT + 3):
        await run.create(n)
    assert len(await pg_pool.fetch(ALERTS_ABOUT, run.subject)) == 1

    run.clock.current = NOW + COOLDOWN
    assert await run.create(LIMIT + 10) is not None

    assert len(await pg_pool.fetch(ALERTS_ABOUT, run.subject)) == 2
    assert len(await pg_pool.fetch(MAILS_ABOUT, run.subject)) == 2


async def test_creating_the_same_payment_twice_counts_it_once(run, pg_pool):
    await run.create(1)
    await run.create(1)
    assert await run.ip_count() == 1

    for n in range(2, LIMIT + 2):
        await run.create(n)
    assert await run.ip_count() == LIMIT + 1

    blocked = await run.create(LIMIT + 1)  # the blocked one, asked for again

    assert isinstance(blocked, PaymentBlocked)
    assert await run.ip_count() == LIMIT + 1
    assert len(await pg_pool.fetch(SIGNALS_FOR, [run.command(LIMIT + 1).payment_id])) == 1
    assert len(await pg_pool.fetch(ALERTS_ABOUT, run.subject)) == 1


async def test_the_client_ip_and_device_are_stored_with_the_payment(run, pg_pool):
    await run.create(1)

    async with pg_unit_of_work(pg_pool, cipher=CIPHER) as uow:
        payment = await uow.payments.get(run.command(1).payment_id)

    assert (payment.client_ip, payment.device_fingerprint) == (run.ip, f"dev-{run.suffix}-1")


async def test_the_database_refuses_a_malformed_device_fingerprint(pg_pool):
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(
            "INSERT INTO payments (payment_id, order_id, user_id, amount, currency, device_fingerprint) "
            "VALUES ($1, $1, 'u', 1, 'INR', 'not ok')",
            f"pay_{uuid.uuid4().hex}",
        )

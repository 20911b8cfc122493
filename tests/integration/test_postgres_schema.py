"""The schema itself guards money, states and idempotency, whatever code writes to it."""

from __future__ import annotations

import uuid
from decimal import Decimal

import asyncpg
import pytest

pytestmark = pytest.mark.integration

PAYMENT_STATES = [
    "CREATED", "PENDING", "AUTHORIZING", "PROCESSING", "SUCCESS", "FAILED",
    "EXPIRED", "CANCELLED", "REFUNDED", "PARTIALLY_REFUNDED", "SETTLED",
]  # fmt: skip

INSERT_PAYMENT = """
INSERT INTO payments (payment_id, order_id, user_id, amount, currency, status, idempotency_key,
                      gateway_payment_id)
VALUES ($1, $1, $2, $3, $4, $5, $6, $7)
"""
INSERT_TRANSACTION = """
INSERT INTO transactions (transaction_id, payment_id, provider_transaction_id, amount, currency, status)
VALUES ($1, $2, $3, 10.00, 'INR', $4)
"""
INSERT_REFUND = """
INSERT INTO refunds (refund_id, payment_id, amount, currency, status, idempotency_key)
VALUES ($1, $2, $3, 'INR', $4, $5)
"""
INSERT_WEBHOOK = """
INSERT INTO webhook_logs (event_id, raw_body, headers, hash, processing_status)
VALUES ($1, '{}', '{}', $2, $3)
"""
NAIVE_TIMESTAMP_COLUMNS = """
SELECT table_name || '.' || column_name FROM information_schema.columns
WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'
"""
FLOATING_POINT_COLUMNS = """
SELECT table_name || '.' || column_name FROM information_schema.columns
WHERE table_schema = 'public' AND data_type IN ('real', 'double precision')
"""
SHA256_OF_EMPTY_OBJECT = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def new_id(prefix: str = "pay") -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


async def a_payment(pool, **overrides) -> str:
    payment_id = new_id()
    values = {"user": new_id("user"), "amount": Decimal("499.00"), "currency": "INR", "status": "CREATED"}
    values |= overrides
    await pool.execute(
        INSERT_PAYMENT,
        payment_id,
        values["user"],
        values["amount"],
        values["currency"],
        values["status"],
        values.get("idempotency_key"),
        values.get("gateway_payment_id"),
    )
    return payment_id


async def test_every_payment_state_of_the_domain_is_accepted(pg_pool):
    for state in PAYMENT_STATES:
        await a_payment(pg_pool, status=state)

    assert len(PAYMENT_STATES) == 11


@pytest.mark.parametrize(
    "overrides",
    [{"status": "PAID"}, {"amount": Decimal("0")}, {"amount": Decimal("-1.00")}, {"currency": "inr"}],
    ids=["unknown-state", "zero-amount", "negative-amount", "lower-case-currency"],
)
async def test_a_payment_breaking_a_rule_is_refused(pg_pool, overrides):
    with pytest.raises(asyncpg.CheckViolationError):
        await a_payment(pg_pool, **overrides)


async def test_amounts_are_kept_exactly_as_decimals(pg_pool):
    payment_id = await a_payment(pg_pool, amount=Decimal("1234567890123456.78"))

    stored = await pg_pool.fetchval("SELECT amount FROM payments WHERE payment_id = $1", payment_id)
    assert stored == Decimal("1234567890123456.78")


async def test_an_idempotency_key_is_unique_per_user_only(pg_pool):
    user, key = new_id("user"), new_id("key")
    await a_payment(pg_pool, user=user, idempotency_key=key)
    await a_payment(pg_pool, idempotency_key=key)  # another user may use the same key
    await a_payment(pg_pool, user=user)  # and requests without a key never collide
    await a_payment(pg_pool, user=user)

    with pytest.raises(asyncpg.UniqueViolationError):
        await a_payment(pg_pool, user=user, idempotency_key=key)


async def test_a_gateway_payment_id_belongs_to_one_payment(pg_pool):
    gateway_payment_id = new_id("cf")
    await a_payment(pg_pool, gateway_payment_id=gateway_payment_id)

    with pytest.raises(asyncpg.UniqueViolationError):
        await a_payment(pg_pool, gateway_payment_id=gateway_payment_id)


async def test_a_gateway_attempt_is_recorded_once_and_with_a_known_status(pg_pool):
    payment_id, attempt = await a_payment(pg_pool), new_id("cf")
    await pg_pool.execute(INSERT_TRANSACTION, new_id("txn"), payment_id, attempt, "FAILED")

    with pytest.raises(asyncpg.UniqueViolationError):
        await pg_pool.execute(INSERT_TRANSACTION, new_id("txn"), payment_id, attempt, "SUCCESS")
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(INSERT_TRANSACTION, new_id("txn"), payment_id, new_id("cf"), "DONE")


async def test_refunds_need_a_positive_amount_a_known_state_and_a_fresh_key_per_payment(pg_pool):
    payment_id, key = await a_payment(pg_pool), new_id("key")
    await pg_pool.execute(INSERT_REFUND, new_id("rf"), payment_id, Decimal("10.00"), "INITIATED", key)

    with pytest.raises(asyncpg.UniqueViolationError):
        await pg_pool.execute(INSERT_REFUND, new_id("rf"), payment_id, Decimal("5.00"), "INITIATED", key)
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(INSERT_REFUND, new_id("rf"), payment_id, Decimal("0"), "INITIATED", None)
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(INSERT_REFUND, new_id("rf"), payment_id, Decimal("1.00"), "DONE", None)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pg_pool.execute(INSERT_REFUND, new_id("rf"), new_id(), Decimal("1.00"), "INITIATED", None)


async def test_a_webhook_event_is_logged_once_with_a_known_status_and_a_sha256(pg_pool):
    event_id = new_id("evt")
    await pg_pool.execute(INSERT_WEBHOOK, event_id, SHA256_OF_EMPTY_OBJECT, "RECEIVED")

    with pytest.raises(asyncpg.UniqueViolationError):
        await pg_pool.execute(INSERT_WEBHOOK, event_id, SHA256_OF_EMPTY_OBJECT, "RECEIVED")
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(INSERT_WEBHOOK, new_id("evt"), SHA256_OF_EMPTY_OBJECT, "DONE")
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute(INSERT_WEBHOOK, new_id("evt"), "not-a-hash", "RECEIVED")


async def test_every_timestamp_column_has_a_time_zone_and_no_column_is_floating_point(pg_pool):
    assert await pg_pool.fetch(NAIVE_TIMESTAMP_COLUMNS) == []
    assert await pg_pool.fetch(FLOATING_POINT_COLUMNS) == []

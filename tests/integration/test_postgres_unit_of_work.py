"""pg_unit_of_work: commit on success, roll back on error, and typed errors when the database fails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from payments.bridges.postgres.pool import open_pool
from payments.bridges.postgres.unit_of_work import PgUnitOfWork, pg_unit_of_work
from payments.domain.errors import DependencyUnavailable

pytestmark = pytest.mark.integration

INSERT_PAYMENT = """
INSERT INTO payments (payment_id, order_id, user_id, gateway_order_id, amount, currency, metadata)
VALUES ($1, $1, 'user_1', $1, 499.00, 'INR', $2)
"""
PAYMENT_EXISTS = "SELECT EXISTS (SELECT 1 FROM payments WHERE payment_id = $1)"
#: End a backend from outside, as a failover or an admin would, and wait until it has exited.
TERMINATE_AND_WAIT = "SELECT pg_terminate_backend($1, 5000)"


class Abort(Exception):
    pass


async def enter_and_leave(context) -> None:
    async with context:
        pass


def a_payment_id() -> str:
    return f"pay_{uuid.uuid4().hex}"


async def test_leaving_the_block_normally_commits(pg_pool):
    payment_id = a_payment_id()
    async with pg_unit_of_work(pg_pool) as uow:
        assert isinstance(uow, PgUnitOfWork)
        await uow.connection.execute(INSERT_PAYMENT, payment_id, {})

    assert await pg_pool.fetchval(PAYMENT_EXISTS, payment_id) is True


async def test_an_exception_rolls_back_and_propagates_unchanged(pg_pool):
    payment_id = a_payment_id()

    async def insert_then_fail() -> None:
        async with pg_unit_of_work(pg_pool) as uow:
            await uow.connection.execute(INSERT_PAYMENT, payment_id, {})
            raise Abort

    with pytest.raises(Abort):
        await insert_then_fail()

    assert await pg_pool.fetchval(PAYMENT_EXISTS, payment_id) is False


async def test_a_constraint_violation_stays_a_database_error(pg_pool):
    payment_id = a_payment_id()
    async with pg_unit_of_work(pg_pool) as uow:
        await uow.connection.execute(INSERT_PAYMENT, payment_id, {})

    with pytest.raises(asyncpg.UniqueViolationError):
        async with pg_unit_of_work(pg_pool) as uow:
            await uow.connection.execute(INSERT_PAYMENT, payment_id, {})


async def test_the_connection_goes_back_to_the_pool_after_either_outcome(pg_pool):
    idle_before = pg_pool.get_idle_size()
    async with pg_unit_of_work(pg_pool):
        pass
    with pytest.raises(Abort):
        async with pg_unit_of_work(pg_pool):
            raise Abort

    assert pg_pool.get_idle_size() >= max(idle_before, 1)
    assert pg_pool.get_size() - pg_pool.get_idle_size() == 0


async def test_no_free_connection_within_the_timeout_is_a_dependency_error(migrated_dsn):
    async with (
        open_pool(migrated_dsn, min_size=1, max_size=1, command_timeout=5.0) as pool,
        pool.acquire(),  # the only connection is taken
    ):
        with pytest.raises(DependencyUnavailable, match="acquire"):
            await enter_and_leave(pg_unit_of_work(pool, acquire_timeout=0.2))


@pytest.mark.parametrize(
    "terminate",
    [
        # Returns once the backend has exited: the driver sees a closed connection.
        TERMINATE_AND_WAIT,
        # Returns at once: the next statement races the server's goodbye.
        "SELECT pg_terminate_backend($1)",
    ],
    ids=["after-the-server-closed-it", "while-the-server-closes-it"],
)
async def test_a_connection_killed_mid_transaction_is_a_dependency_error_and_nothing_commits(
    pg_pool, terminate
):
    payment_id = a_payment_id()

    async def insert_kill_insert() -> None:
        async with pg_unit_of_work(pg_pool) as uow:
            await uow.connection.execute(INSERT_PAYMENT, payment_id, {})
            assert await pg_pool.fetchval(terminate, uow.connection.get_server_pid())
            await uow.connection.execute(INSERT_PAYMENT, a_payment_id(), {})

    with pytest.raises(DependencyUnavailable, match="query"):
        await insert_kill_insert()

    assert await pg_pool.fetchval(PAYMENT_EXISTS, payment_id) is False


async def test_a_connection_lost_before_commit_is_a_dependency_error_and_nothing_commits(pg_pool):
    payment_id = a_payment_id()

    async def insert_then_lose_the_connection() -> None:
        async with pg_unit_of_work(pg_pool) as uow:
            await uow.connection.execute(INSERT_PAYMENT, payment_id, {})
            assert await pg_pool.fetchval(TERMINATE_AND_WAIT, uow.connection.get_server_pid())

    with pytest.raises(DependencyUnavailable, match="commit"):
        await insert_then_lose_the_connection()

    assert await pg_pool.fetchval(PAYMENT_EXISTS, payment_id) is False


async def test_a_statement_timeout_is_a_dependency_error(migrated_dsn):
    async with open_pool(migrated_dsn, min_size=1, max_size=1, command_timeout=0.2) as pool:
        with pytest.raises(DependencyUnavailable):
            async with pg_unit_of_work(pool) as uow:
                await uow.connection.execute("SELECT pg_sleep(5)")


async def test_json_columns_take_and_give_python_dicts(pg_pool):
    payment_id = a_payment_id()
    metadata = {"plan": "pro", "seats": 3, "nested": {"ok": True}, "at": datetime(2026, 1, 1, tzinfo=UTC)}
    async with pg_unit_of_work(pg_pool) as uow:
        await uow.connection.execute(INSERT_PAYMENT, payment_id, metadata)

    stored = await pg_pool.fetchval("SELECT metadata FROM payments WHERE payment_id = $1", payment_id)
    assert stored == {"plan": "pro", "seats": 3, "nested": {"ok": True}, "at": "2026-01-01T00:00:00+00:00"}


async def test_units_of_work_run_side_by_side_on_separate_connections(pg_pool):
    pids = set()
    both_open = asyncio.Barrier(2)

    async def hold() -> None:
        async with pg_unit_of_work(pg_pool) as uow:
            await both_open.wait()
            pids.add(uow.connection.get_server_pid())

    await asyncio.gather(hold(), hold())

    assert len(pids) == 2

"""The PostgreSQL inbox, outbox, audit log and unit of work keep the shared storage contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import pytest

from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.unit_of_work import UnitOfWork
from tests.contracts_storage import CONTRACT_HEADERS, STORAGE_CONTRACTS, StoredEvent, contract_id

pytestmark = pytest.mark.integration

#: Whether a consumer's claim of an event committed.
INBOX_HOLDS = "SELECT EXISTS (SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2)"
#: One outbox row, JSON as text so no codec is involved.
STORED_EVENT = """
SELECT exchange, routing_key, payload::text AS payload, headers::text AS headers
FROM outbox WHERE event_id = $1
"""
#: The audit rows of one resource, in chain order.
AUDIT_IDS = "SELECT id FROM audit_logs WHERE resource_id = $1 ORDER BY id"
#: Triggers do not fire for a session in replica mode: how a superuser could edit the log.
BYPASS_TRIGGERS = "SET session_replication_role = replica"
READ_ACTION = "SELECT action FROM audit_logs WHERE id = $1"
WRITE_ACTION = "UPDATE audit_logs SET action = $2 WHERE id = $1"


class PgHarness:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return pg_unit_of_work(self.pool, headers=CONTRACT_HEADERS)

    async def inbox_holds(self, consumer: str, event_id: str) -> bool:
        return bool(await self.pool.fetchval(INBOX_HOLDS, consumer, event_id))

    async def stored_event(self, event_id: str) -> StoredEvent | None:
        row = await self.pool.fetchrow(STORED_EVENT, event_id)
        if row is None:
            return None
        return StoredEvent(
            row["exchange"], row["routing_key"], json.loads(row["payload"]), json.loads(row["headers"])
        )

    async def audit_ids(self, resource_id: str) -> list[int]:
        return [row["id"] for row in await self.pool.fetch(AUDIT_IDS, resource_id)]

    @asynccontextmanager
    async def tampered_audit_row(self, row_id: int) -> AsyncIterator[None]:
        async with self.pool.acquire() as connection:
            await connection.execute(BYPASS_TRIGGERS)
            original = await connection.fetchval(READ_ACTION, row_id)
            await connection.execute(WRITE_ACTION, row_id, "edited behind the log's back")
            try:
                yield
            finally:
                # Put it back, or every later chain verification in this database would fail.
                await connection.execute(WRITE_ACTION, row_id, original)


@pytest.mark.parametrize("contract", STORAGE_CONTRACTS, ids=contract_id)
async def test_postgres_storage_keeps_the_contract_that(contract, pg_pool):
    await contract(PgHarness(pg_pool))

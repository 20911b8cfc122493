"""The audit table refuses changes, and verify_chain finds rows edited or removed behind its back."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from payments.bridges.postgres.audit import PgAuditLog
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_storage import an_entry

pytestmark = pytest.mark.integration

BYPASS_TRIGGERS = "SET session_replication_role = replica"
AUDIT_ROWS = "SELECT * FROM audit_logs WHERE resource_id = $1 ORDER BY id"
DELETE_ROW = "DELETE FROM audit_logs WHERE id = $1"
#: Put a deleted row back exactly as it was, id included.
REINSERT_ROW = """
INSERT INTO audit_logs (id, actor_id, action, resource_type, resource_id, before_state, after_state,
                        ip_address, user_agent, trace_id, request_id, created_at, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""


async def append_three(pool) -> tuple[str, list[asyncpg.Record]]:
    resource = f"pay-{uuid.uuid4().hex}"
    async with pg_unit_of_work(pool) as uow:
        for action in ("a", "b", "c"):
            await uow.audit.append(an_entry(resource, action))
    return resource, await pool.fetch(AUDIT_ROWS, resource)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_logs SET action = 'edited' WHERE id = $1",
        "DELETE FROM audit_logs WHERE id = $1",
    ],
    ids=["update", "delete"],
)
async def test_audit_rows_cannot_be_updated_or_deleted(pg_pool, statement):
    _, rows = await append_three(pg_pool)

    with pytest.raises(asyncpg.RaiseError, match="audit_logs is append-only"):
        await pg_pool.execute(statement, rows[0]["id"])

    assert await pg_pool.fetchval("SELECT action FROM audit_logs WHERE id = $1", rows[0]["id"]) == "a"


async def test_the_audit_table_cannot_be_truncated(pg_pool):
    await append_three(pg_pool)

    with pytest.raises(asyncpg.RaiseError, match="TRUNCATE is not allowed"):
        await pg_pool.execute("TRUNCATE audit_logs")

    assert await pg_pool.fetchval("SELECT count(*) FROM audit_logs") >= 3


async def test_a_row_deleted_from_the_middle_breaks_the_link_of_the_row_after_it(pg_pool):
    _, rows = await append_three(pg_pool)
    middle, after = rows[1], rows[2]

    async with pg_pool.acquire() as connection:
        await connection.execute(BYPASS_TRIGGERS)
        await connection.execute(DELETE_ROW, middle["id"])
        try:
            result = await PgAuditLog(connection).verify_chain()
        finally:
            await connection.execute(REINSERT_ROW, *middle.values())
        restored = await PgAuditLog(connection).verify_chain()

    assert result.first_broken_id == after["id"]
    assert restored.intact


async def test_append_outside_a_transaction_still_links_to_the_previous_row(pg_pool):
    resource = f"pay-{uuid.uuid4().hex}"
    async with pg_pool.acquire() as connection:
        audit = PgAuditLog(connection)
        await audit.append(an_entry(resource, "first"))
        await audit.append(an_entry(resource, "second"))
        result = await audit.verify_chain()

    rows = await pg_pool.fetch(AUDIT_ROWS, resource)
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert result.intact

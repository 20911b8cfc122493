"""Migrations run once each, concurrently safe, and refuse edited history; databases are created on demand."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from payments.bridges.postgres.migrate import (
    MigrationChecksumMismatch,
    MigrationError,
    ensure_database,
    load_migrations,
    migrate,
)
from payments.domain.errors import DependencyUnavailable

pytestmark = pytest.mark.integration

APPLIED = "SELECT version, name FROM schema_migrations ORDER BY version"
TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"


async def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


async def test_ensure_database_creates_the_database_once(scratch_dsn):
    assert await ensure_database(scratch_dsn) is True
    assert await ensure_database(scratch_dsn) is False
    assert await fetch(scratch_dsn, "SELECT 1 AS one") == [(1,)]


async def test_two_concurrent_migrations_apply_every_file_exactly_once(scratch_dsn):
    await ensure_database(scratch_dsn)
    every_name = [migration.name for migration in load_migrations()]

    first, second = await asyncio.gather(migrate(scratch_dsn), migrate(scratch_dsn))

    # The advisory lock makes one run apply everything and the other, having waited, nothing.
    assert sorted([first, second], key=len) == [[], every_name]
    applied = await fetch(scratch_dsn, APPLIED)
    assert [row["name"] for row in applied] == every_name
    tables = {row["table_name"] for row in await fetch(scratch_dsn, TABLES)}
    assert {"payments", "transactions", "webhook_logs", "refunds", "audit_logs", "outbox", "inbox"} <= tables


async def test_a_second_migration_run_applies_nothing(migrated_dsn):
    assert await migrate(migrated_dsn) == []


async def test_a_migration_edited_after_it_was_applied_is_refused(scratch_dsn, tmp_path):
    await ensure_database(scratch_dsn)
    script = tmp_path / "0001_widgets.sql"
    script.write_text("CREATE TABLE widgets (id integer PRIMARY KEY);")
    assert await migrate(scratch_dsn, migrations=tmp_path) == ["0001_widgets"]

    script.write_text("CREATE TABLE widgets (id bigint PRIMARY KEY);")
    (tmp_path / "0002_gadgets.sql").write_text("CREATE TABLE gadgets (id integer PRIMARY KEY);")

    with pytest.raises(MigrationChecksumMismatch, match="0001_widgets was changed after it was applied"):
        await migrate(scratch_dsn, migrations=tmp_path)
    tables = {row["table_name"] for row in await fetch(scratch_dsn, TABLES)}
    assert "gadgets" not in tables


async def test_a_failing_migration_leaves_nothing_behind_and_is_retried_next_time(scratch_dsn, tmp_path):
    await ensure_database(scratch_dsn)
    (tmp_path / "0001_half.sql").write_text("CREATE TABLE half (id integer); SELECT 1 / 0;")

    with pytest.raises(MigrationError, match="0001_half failed"):
        await migrate(scratch_dsn, migrations=tmp_path)
    assert "half" not in {row["table_name"] for row in await fetch(scratch_dsn, TABLES)}

    (tmp_path / "0001_half.sql").write_text("CREATE TABLE half (id integer);")
    assert await migrate(scratch_dsn, migrations=tmp_path) == ["0001_half"]


async def test_migrating_an_unreachable_server_is_a_dependency_error():
    with pytest.raises(DependencyUnavailable):
        await migrate("postgresql://postgres@127.0.0.1:1/payments")

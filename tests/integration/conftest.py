"""PostgreSQL fixtures: the session database migrated once, a pool per test, scratch databases on demand."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from payments.bridges.postgres.migrate import migrate
from payments.bridges.postgres.pool import open_pool


@pytest.fixture(scope="session")
def migrated_dsn(postgres_dsn: str) -> str:
    """The run's database with every migration applied (once per session)."""
    asyncio.run(migrate(postgres_dsn))
    return postgres_dsn


@pytest.fixture
async def pg_pool(migrated_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the migrated database, closed after the test."""
    async with open_pool(migrated_dsn, min_size=1, max_size=8, command_timeout=30.0) as pool:
        yield pool


@pytest.fixture
async def scratch_dsn(postgres_dsn: str) -> AsyncIterator[str]:
    """A DSN naming a database that does not exist yet (tests create it); dropped after the test."""
    name = f"payments_scratch_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_dsn.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        # Identifiers cannot be bind parameters; the name is ours and contains only [a-z0-9_].
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()

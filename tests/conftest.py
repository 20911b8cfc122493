"""Shared fixtures: every test run gets its own PostgreSQL database, RabbitMQ vhost and Redis database.

The real services run on their default local ports (see README). Nothing here mocks them: a run
creates fresh, uniquely named resources and removes them at the end, so runs never see each other's
data and a crashed run leaves nothing that breaks the next one.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from payments.bridges.postgres.migrate import migrate
from payments.bridges.postgres.pool import open_pool

POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RABBITMQ_BASE_URL = os.environ.get("TEST_RABBITMQ_BASE_URL", "amqp://guest:guest@127.0.0.1:5672")
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

RUN_ID = uuid.uuid4().hex[:8]


async def _admin_execute(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A fresh, empty database for this test run (not migrated; see ``migrated_dsn``)."""
    name = f"payments_test_{RUN_ID}"
    asyncio.run(_admin_execute(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A fresh RabbitMQ virtual host for this test run, with the guest user allowed in it."""
    vhost = f"payments-test-{RUN_ID}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"{RABBITMQ_BASE_URL}/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database reserved for tests; keys are namespaced per test by the tests themselves."""
    return REDIS_TEST_URL


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

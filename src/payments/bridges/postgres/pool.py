"""The asyncpg pool, built inside the running loop by the composition root, and its health probe."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from payments.bridges.postgres.errors import CONNECTION_ERRORS, database_unavailable
from payments.bridges.postgres.json_values import to_json

#: What repositories accept: a plain connection or one lent by the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

#: The health probe: proves a round trip and reports what we are talking to.
HEALTH_PROBE: Final = "SELECT 1 AS alive, current_setting('server_version') AS server_version"

#: A health check must answer quickly even when the database hangs; load balancers time out at ~10 s.
HEALTH_TIMEOUT_SECONDS: Final = 3.0

#: Anything the driver raises during the probe means "not healthy", whatever its cause.
_PROBE_FAILURES: Final[tuple[type[Exception], ...]] = (
    *CONNECTION_ERRORS,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


async def _install_json_codecs(connection: asyncpg.Connection[asyncpg.Record]) -> None:
    # Dicts in and out of json/jsonb columns. Decimal and datetime values go in as strings (money in
    # JSON is a string here, as in outbox payloads); JSON's own types read back as json.loads gives
    # them, so reading a document and writing it back never changes it.
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=to_json, decoder=json.loads, schema="pg_catalog", format="text"
        )


@asynccontextmanager
async def open_pool(
    dsn: str, *, min_size: int, max_size: int, command_timeout: float
) -> AsyncIterator[asyncpg.Pool[asyncpg.Record]]:
    """An asyncpg pool whose connections map json/jsonb to Python values; closed on exit.

    TLS options in the DSN (``?sslmode=verify-full&sslrootcert=...``) are honoured by asyncpg itself.
    Raises ``DependencyUnavailable`` when the server cannot be reached for the first ``min_size``
    connections; a wrong password or database name stays an asyncpg error, since retrying cannot fix it.
    """
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            init=_install_json_codecs,
        )
    except CONNECTION_ERRORS as error:
        raise database_unavailable("connect", error) from error
    try:
        yield pool
    finally:
        await pool.close()


async def check_database(
    pool: asyncpg.Pool[asyncpg.Record], *, timeout_seconds: float = HEALTH_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """Round-trip to the database and describe it, for ``GET /health/database``.

    Raises ``DependencyUnavailable`` with a short reason when no answer comes within ``timeout_seconds``.
    """
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_seconds), pool.acquire() as connection:
            row = await connection.fetchrow(HEALTH_PROBE)
    except _PROBE_FAILURES as error:
        raise database_unavailable("health check", error) from error
    assert row is not None  # SELECT without FROM always returns one row
    return {
        "status": "ok",
        "server_version": row["server_version"],
        "latency_seconds": round(time.perf_counter() - started, 6),
        "pool_size": pool.get_size(),
        "pool_idle": pool.get_idle_size(),
        "pool_max_size": pool.get_max_size(),
    }

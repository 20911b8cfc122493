"""The Redis client of a process, opened inside the running loop by the composition root."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from payments.domain.errors import DependencyUnavailable

#: A Redis that does not answer the probe in this time counts as unavailable.
PROBE_TIMEOUT_SECONDS: Final = 2.0
#: Connections one process keeps open to Redis at most (web handlers and agents share them).
MAX_CONNECTIONS: Final = 100
#: How long a command waits for a free connection before Redis counts as unavailable.
CONNECTION_WAIT_SECONDS: Final = 5.0


@asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[Redis]:
    """A client for ``url`` (redis:// or rediss:// for TLS), closed with its connection pool on exit.

    Connections are made lazily by the pool, so this never fails on a Redis that is down; the first
    command does (``check_redis`` at start-up turns that into ``DependencyUnavailable``).
    """
    # A blocking pool: a burst waits briefly for a free connection instead of failing at once.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_SECONDS
    )
    client = Redis.from_pool(pool)  # the client owns the pool: closing it closes the pool
    try:
        yield client
    finally:
        await client.aclose()


async def check_redis(client: Redis) -> dict[str, Any]:
    """Health probe: PING, then the server version and memory in use.

    Raises ``DependencyUnavailable`` if Redis does not answer within ``PROBE_TIMEOUT_SECONDS``.
    """
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            started = asyncio.get_running_loop().time()
            await client.ping()
            round_trip = asyncio.get_running_loop().time() - started
            server = await client.info("server")
            memory = await client.info("memory")
    except (RedisError, OSError, TimeoutError) as error:
        # The message names the error type only: redis-py's text can include the connection details.
        raise DependencyUnavailable(f"Redis did not answer a health probe: {type(error).__name__}") from None
    return {
        "status": "ok",
        "version": str(server.get("redis_version", "unknown")),
        "used_memory_bytes": int(memory.get("used_memory", 0)),
        "round_trip_seconds": round(round_trip, 6),
    }

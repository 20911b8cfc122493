"""The Redis client and its health probe, against the real server."""

from __future__ import annotations

import pytest

from payments.bridges.redis.client import check_redis, open_redis
from payments.domain.errors import DependencyUnavailable
from tests.integration.redis_support import delete_prefixed, unique_prefix
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_an_opened_client_talks_to_redis_and_its_connection_is_closed_on_exit(redis_url: str) -> None:
    prefix = unique_prefix("client")
    async with open_redis(redis_url) as observer:
        async with open_redis(redis_url) as client:
            await client.set(f"{prefix}greeting", "hello", ex=60)
            assert await client.get(f"{prefix}greeting") == b"hello"
            connection_id = await client.client_id()
            assert await observer.client_list(client_id=[connection_id]) != []
            await delete_prefixed(client, prefix)

        async def disconnected() -> bool:
            # CLIENT LIST ID lists only the connections still open on the server.
            return await observer.client_list(client_id=[connection_id]) == []

        await eventually(disconnected, what=f"redis connection {connection_id} to close")


async def test_the_health_probe_reports_the_server_version_and_memory(redis_url: str) -> None:
    async with open_redis(redis_url) as client:
        health = await check_redis(client)

    assert health["status"] == "ok"
    assert int(health["version"].split(".")[0]) >= 7
    assert health["used_memory_bytes"] > 0
    assert health["round_trip_seconds"] >= 0


async def test_the_health_probe_of_an_unreachable_redis_raises_dependency_unavailable() -> None:
    async with open_redis("redis://:Secret-Pw@127.0.0.1:1/0") as client:
        with pytest.raises(DependencyUnavailable) as raised:
            await check_redis(client)

    assert "Secret-Pw" not in str(raised.value)

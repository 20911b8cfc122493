"""Helpers shared by the Redis integration tests: a unique key prefix per test, removed afterwards."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis


def unique_prefix(name: str) -> str:
    return f"test:{name}:{uuid.uuid4().hex[:10]}:"


async def delete_prefixed(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)

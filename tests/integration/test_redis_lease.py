"""RedisLease: one worker per firing of a scheduled job, released only by its owner."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.lease import RedisLease
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_only_one_of_two_concurrent_workers_acquires_a_lease(redis_url: str, prefix: str) -> None:
    key = f"{prefix}lease:schedule:reconcile:1"
    # Two clients with their own connection pools stand in for two worker processes.
    async with open_redis(redis_url) as first, open_redis(redis_url) as second:
        results = await asyncio.gather(
            RedisLease(first).try_acquire(key, owner="worker-a", ttl_seconds=30),
            RedisLease(second).try_acquire(key, owner="worker-b", ttl_seconds=30),
        )
        holder = await first.get(key)

    assert sorted(results) == [False, True]
    assert holder == (b"worker-a" if results[0] else b"worker-b")


async def test_a_lease_expires_by_itself_after_its_ttl(client: Redis, prefix: str) -> None:
    lease = RedisLease(client)
    key = f"{prefix}slot-7"

    assert await lease.try_acquire(key, owner="worker-a", ttl_seconds=0.2)
    assert 0 < await client.pttl(key) <= 200
    assert not await lease.try_acquire(key, owner="worker-b", ttl_seconds=0.2)

    async def taken_over() -> bool:
        return await lease.try_acquire(key, owner="worker-b", ttl_seconds=30)

    await eventually(taken_over, what="the first lease to expire")
    assert await client.get(key) == b"worker-b"


async def test_only_the_owner_can_release_a_lease(client: Redis, prefix: str) -> None:
    lease = RedisLease(client)
    key = f"{prefix}slot-8"
    await lease.try_acquire(key, owner="worker-a", ttl_seconds=30)

    assert not await lease.release(key, owner="worker-b")
    assert await client.get(key) == b"worker-a"
    assert await lease.release(key, owner="worker-a")
    assert await client.exists(key) == 0


async def test_releasing_a_lease_nobody_holds_reports_false(client: Redis, prefix: str) -> None:
    assert not await RedisLease(client).release(f"{prefix}never-taken", owner="worker-a")


async def test_a_lease_shorter_than_a_millisecond_is_refused(client: Redis, prefix: str) -> None:
    with pytest.raises(ValueError, match="millisecond"):
        await RedisLease(client).try_acquire(f"{prefix}slot-9", owner="worker-a", ttl_seconds=0.0001)

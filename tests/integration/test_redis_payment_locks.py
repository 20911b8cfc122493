"""The payment lock in the real Redis: one holder at a time, busy callers refused, expiry survived."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.locks import PaymentBusy, RedisPaymentLocks
from payments.domain.errors import DependencyUnavailable
from tests.waiting import eventually


@pytest.fixture
async def redis(redis_url):
    async with open_redis(redis_url) as client:
        yield client


async def test_one_holder_at_a_time_across_many_callers(redis):
    locks = RedisPaymentLocks(redis, ttl_seconds=10, wait_seconds=10)
    payment_id = f"pay_{uuid.uuid4().hex}"
    inside, most_inside = 0, 0

    async def critical_section() -> None:
        nonlocal inside, most_inside
        async with locks.hold(payment_id):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.005)  # simulated gateway call while holding the lock
            inside -= 1

    await asyncio.gather(*(critical_section() for _ in range(20)))

    assert most_inside == 1


async def test_a_caller_that_cannot_get_the_lock_in_time_is_told_to_retry(redis):
    locks = RedisPaymentLocks(redis, ttl_seconds=10, wait_seconds=0.05)
    payment_id = f"pay_{uuid.uuid4().hex}"

    async with locks.hold(payment_id):
        with pytest.raises(PaymentBusy) as busy:
            async with locks.hold(payment_id):
                pass

    assert busy.value.defer == 0.05
    async with locks.hold(payment_id):
        pass  # released on exit, so it can be taken again


async def test_a_lock_that_expired_while_held_is_left_to_its_new_owner(redis):
    short = RedisPaymentLocks(redis, ttl_seconds=0.05, wait_seconds=1)
    payment_id = f"pay_{uuid.uuid4().hex}"

    async with short.hold(payment_id):
        key = f"lock:payment:{payment_id}"
        await eventually(lambda: _gone(redis, key), what="the lock to expire")
        async with RedisPaymentLocks(redis, ttl_seconds=10, wait_seconds=1).hold(payment_id):
            pass

    assert await redis.exists(key) == 0


async def _gone(redis, key: str) -> bool:
    return await redis.exists(key) == 0


async def test_an_unreachable_redis_is_a_dependency_failure():
    async with open_redis("redis://127.0.0.1:1/0") as client:
        with pytest.raises(DependencyUnavailable):
            async with RedisPaymentLocks(client, ttl_seconds=1, wait_seconds=0.1).hold("pay_x"):
                pass

"""RedisRateLimiter on the real Redis: exactly the configured count per window and key, then a wait."""

from __future__ import annotations

import asyncio

import pytest

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.rate_limits import redis_rate_limiter
from payments.domain.errors import DependencyUnavailable

pytestmark = pytest.mark.integration

RATES = {"writes": "3/minute", "user": "5/hour"}


async def test_the_configured_count_is_allowed_and_the_next_is_refused_with_a_wait(client, prefix):
    limiter = redis_rate_limiter(client, RATES, key_prefix=prefix)

    allowed = [await limiter.hit("writes", "u1") for _ in range(3)]
    refused = [await limiter.hit("writes", "u1") for _ in range(2)]

    assert allowed == [None, None, None]
    assert all(wait is not None and 59 < wait <= 60 for wait in refused), refused


async def test_windows_are_kept_per_subject_and_per_limit(client, prefix):
    limiter = redis_rate_limiter(client, RATES, key_prefix=prefix)
    for _ in range(3):
        await limiter.hit("writes", "u1")

    assert await limiter.hit("writes", "u1") is not None
    assert [await limiter.hit("writes", "u2") for _ in range(3)] == [None, None, None]
    assert [await limiter.hit("user", "u1") for _ in range(5)] == [None] * 5
    hour_wait = await limiter.hit("user", "u1")
    assert hour_wait is not None
    assert 3599 < hour_wait <= 3600


async def test_concurrent_hits_let_exactly_the_limit_through(client, prefix):
    limiter = redis_rate_limiter(client, RATES, key_prefix=prefix)

    answers = await asyncio.gather(*(limiter.hit("writes", "burst") for _ in range(20)))

    assert answers.count(None) == 3


async def test_a_window_is_a_list_under_the_rate_limit_key_that_expires_with_it(client, prefix):
    limiter = redis_rate_limiter(client, RATES, key_prefix=prefix)

    await limiter.hit("writes", "u1")
    await limiter.hit("writes", "u1")

    key = f"{prefix}ratelimit:writes/u1/3/1/minute"
    assert [key.encode()] == [k async for k in client.scan_iter(match=f"{prefix}*")]
    assert await client.llen(key) == 2
    assert 0 < await client.ttl(key) <= 60


async def test_an_unreachable_redis_is_reported_as_unavailable_without_its_address():
    async with open_redis("redis://:s3cret-pass@127.0.0.1:1/0") as unreachable:
        limiter = redis_rate_limiter(unreachable, RATES)

        with pytest.raises(DependencyUnavailable) as raised:
            await limiter.hit("writes", "u1")

    assert "s3cret" not in str(raised.value)
    assert "127.0.0.1" not in str(raised.value)

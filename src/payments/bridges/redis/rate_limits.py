"""The web's ``RateLimiter`` (``web/rate_limits.py``): ``limits``' moving window, kept in Redis.

A moving window is exact: each allowed hit is a timestamp in a Redis list trimmed to the limit
(``ratelimit:writes/u1/30/1/minute``), and a hit is allowed only while the entry ``limit`` places back
is older than the window. One Lua script checks and records it, so concurrent web processes never let
more through than the limit. A refused hit is not recorded; its retry-after is when the oldest entry of
the window leaves it.

``redis_rate_limiter`` builds it on the process's own Redis client: the same bounded pool, and the same
``REDIS_URL`` (``rediss://`` for TLS included), so there is no second pool to size or close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Final

import limits
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.bridges.redis.keys import rate_limit_prefix
from payments.domain.errors import DependencyUnavailable

#: A limiter slower than this lets the request through (the caller fails open) rather than hold up a
#: payment; a healthy Redis answers in about a millisecond.
HIT_TIMEOUT_SECONDS: Final = 1.0


class RedisRateLimiter:
    """Named limits (``{"writes": "30/minute"}``) counted per subject in a ``limits`` storage.

    Built with ``redis_rate_limiter``; tests may hand it ``limits``' memory storage, which implements the
    same moving window.
    """

    def __init__(
        self, storage: Storage, rates: Mapping[str, str], *, timeout_seconds: float = HIT_TIMEOUT_SECONDS
    ) -> None:
        self._strategy = MovingWindowRateLimiter(storage)
        self._timeout = timeout_seconds
        self._items = {name: _named(limits.parse(rate), name) for name, rate in rates.items()}

    async def hit(self, limit: str, subject: str) -> float | None:
        """None if ``subject`` is within ``limit`` (the hit is recorded); otherwise the seconds to wait."""
        item = self._items[limit]
        try:
            async with asyncio.timeout(self._timeout):
                if await self._strategy.hit(item, subject):
                    return None
                window = await self._strategy.get_window_stats(item, subject)
        except (RedisError, OSError, TimeoutError) as error:
            # The type only: redis-py's message can name the host.
            raise DependencyUnavailable(
                f"rate limits: Redis did not answer: {type(error).__name__}"
            ) from None
        return max(0.0, window.reset_time - time.time())


def redis_rate_limiter(client: Redis, rates: Mapping[str, str], *, key_prefix: str = "") -> RedisRateLimiter:
    """A ``RedisRateLimiter``, on ``client``'s own connection pool; tests set ``key_prefix`` to keep apart."""
    storage = RedisStorage(
        "async+redis://",  # no address of its own: it uses the pool below
        implementation="redispy",  # redis-py, which we use already (the default would need coredis)
        key_prefix=f"{key_prefix}{rate_limit_prefix()}",
        # ``limits`` documents this option, though it types its options as plain values.
        connection_pool=client.connection_pool,  # type: ignore[arg-type]
    )
    return RedisRateLimiter(storage, rates)


def _named(item: limits.RateLimitItem, name: str) -> limits.RateLimitItem:
    # The namespace starts the key: "writes/u1/30/1/minute" rather than limits' "LIMITER/u1/30/1/minute".
    return type(item)(item.amount, item.multiples, namespace=name)

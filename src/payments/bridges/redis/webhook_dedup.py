"""``webhook:event:{dedup_key}`` in Redis: the replay cache of webhook ingest (``WebhookDedup``).

The value is ``pending`` from ``claim`` (SET NX PX, short) until ``confirm`` turns it into
``confirmed`` for the long retention (SET XX PX). ``release`` is a short Lua script, because it must
check that the key is still pending and delete it in one step: a confirmed key must survive a late
release from another request.
"""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.bridges.redis.keys import webhook_event
from payments.domain.errors import DependencyUnavailable

PENDING: Final = b"pending"
CONFIRMED: Final = b"confirmed"

#: Delete the key only while it is pending (ARGV[1]); a confirmed event stays remembered.
_RELEASE_IF_PENDING: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisWebhookDedup:
    """The ``WebhookDedup`` of the web process.

    ``pending_ttl_seconds`` is ``domain.webhook.dedup.PENDING_TTL_SECONDS`` in production;
    ``confirmed_ttl_seconds`` is ``settings.cashfree.webhook_dedup_ttl_seconds``. ``key_prefix`` lets
    tests share one Redis database without seeing each other's keys.
    """

    def __init__(
        self,
        client: Redis,
        *,
        pending_ttl_seconds: float,
        confirmed_ttl_seconds: float,
        key_prefix: str = "",
    ) -> None:
        self._client = client
        self._pending_ms = _milliseconds(pending_ttl_seconds)
        self._confirmed_ms = _milliseconds(confirmed_ttl_seconds)
        self._prefix = key_prefix
        # register_script only hashes the script; Redis loads it on first use.
        self._release = client.register_script(_RELEASE_IF_PENDING)

    async def claim(self, key: str) -> bool:
        try:
            taken = await self._client.set(self._key(key), PENDING, nx=True, px=self._pending_ms)
        except (RedisError, OSError) as error:
            raise _unavailable("claim", error) from None
        return bool(taken)

    async def confirm(self, key: str) -> None:
        try:
            await self._client.set(self._key(key), CONFIRMED, xx=True, px=self._confirmed_ms)
        except (RedisError, OSError) as error:
            raise _unavailable("confirm", error) from None

    async def release(self, key: str) -> None:
        try:
            await self._release(keys=[self._key(key)], args=[PENDING])
        except (RedisError, OSError) as error:
            raise _unavailable("release", error) from None

    def _key(self, key: str) -> str:
        return self._prefix + webhook_event(key)


def _milliseconds(seconds: float) -> int:
    milliseconds = round(seconds * 1000)
    if milliseconds < 1:
        raise ValueError("a time to live must be at least one millisecond")
    return milliseconds


def _unavailable(operation: str, error: Exception) -> DependencyUnavailable:
    # The type only: redis-py's message can name the host.
    return DependencyUnavailable(f"Redis did not answer a webhook dedup {operation}: {type(error).__name__}")

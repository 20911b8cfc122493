"""Leases that let one worker of a fleet run each firing of a timer or crontab (DESIGN §4).

The key names the firing (``keys.schedule_lease(job, slot)``), so the first worker to set it runs that
firing and the others skip it. The lease is never renewed: it expires by itself once the firing's
window has passed, and ``release`` exists only for a holder that wants to give a lease back early.
"""

from __future__ import annotations

from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.domain.errors import DependencyUnavailable

#: Delete the key only if its value is still the caller's owner token. GET then DEL from Python would
#: delete a lease another worker took between the two calls, after ours expired.
_RELEASE_IF_OWNER: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLease:
    """Time-limited, owner-tagged leases on Redis keys (SET NX PX)."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        # register_script only hashes the script; it is loaded into Redis on first use.
        self._release_if_owner = client.register_script(_RELEASE_IF_OWNER)

    async def try_acquire(self, key: str, *, owner: str, ttl_seconds: float) -> bool:
        """Take the lease on ``key`` for ``ttl_seconds`` if nobody holds it; True if we got it."""
        ttl_ms = round(ttl_seconds * 1000)
        if ttl_ms < 1:
            raise ValueError("ttl_seconds must be at least one millisecond")
        try:
            acquired = await self._client.set(key, owner, nx=True, px=ttl_ms)
        except (RedisError, OSError) as error:
            raise DependencyUnavailable(
                f"Redis did not answer a lease request: {type(error).__name__}"
            ) from None
        return bool(acquired)

    async def release(self, key: str, *, owner: str) -> bool:
        """Give the lease on ``key`` back if ``owner`` holds it; True if it was deleted."""
        try:
            deleted = await self._release_if_owner(keys=[key], args=[owner])
        except (RedisError, OSError) as error:
            raise DependencyUnavailable(
                f"Redis did not answer a lease release: {type(error).__name__}"
            ) from None
        return bool(deleted)

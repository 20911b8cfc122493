"""``lock:payment:{paymentId}`` in Redis, with redis-py's own ``Lock`` (token-checked release, expiry)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from payments.bridges.redis.keys import payment_lock
from payments.domain.errors import DependencyUnavailable

logger = logging.getLogger(__name__)


class PaymentBusy(DependencyUnavailable):
    """Another worker is talking to the gateway about this payment; try again shortly."""

    code = "payment_busy"


class RedisPaymentLocks:
    """Serialises gateway calls for one payment across every process.

    ``ttl_seconds`` bounds how long a crashed holder can block the payment; it must exceed the
    longest gateway call (timeout times tries). ``wait_seconds`` is how long a caller queues for it.
    """

    def __init__(self, client: Redis, *, ttl_seconds: float, wait_seconds: float) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._wait = wait_seconds

    @asynccontextmanager
    async def hold(self, payment_id: str) -> AsyncIterator[None]:
        lock = self._client.lock(payment_lock(payment_id), timeout=self._ttl, blocking_timeout=self._wait)
        try:
            acquired = await lock.acquire()
        except RedisError as error:
            raise DependencyUnavailable(f"cannot take the payment lock: {type(error).__name__}") from None
        if not acquired:
            raise PaymentBusy(f"payment {payment_id} is busy", defer=self._wait)
        try:
            yield
        finally:
            await _release(lock, payment_id)


async def _release(lock: object, payment_id: str) -> None:
    try:
        await lock.release()  # type: ignore[attr-defined]
    except LockNotOwnedError:
        # It expired while held and may belong to someone else now; the SQL guard kept the payment right.
        logger.warning("payment lock for %s expired while held", payment_id)
    except (LockError, RedisError) as error:
        logger.warning("could not release the payment lock for %s: %s", payment_id, type(error).__name__)

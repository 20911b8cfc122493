"""Request rate limits (DESIGN §8): per client address, per user, and stricter on money-moving writes.

Which limit applies to which request is decided here; the counting is a ``RateLimiter`` the composition
root hands in (``bridges/redis/rate_limits.py``: ``limits``' moving window in Redis, shared by every web
process). Two middlewares apply them, on either side of authentication (see ``MIDDLEWARES``):

- ``address_rate_limit_middleware``, before authentication, counts every request to a route that needs
  a token (``/api/v1/`` except Cashfree's webhooks and Alertmanager's intake) by client address
  (``client_ip``: the peer, or what a ``TRUSTED_PROXIES`` proxy says), so a flood of guessed tokens is
  limited before any token is checked;
- ``user_rate_limit_middleware``, after it, counts every request of the authenticated user, and payment
  create and verify and refund initiate once more against the stricter ``writes`` limit.

A refused request is answered 429 ``rate_limited`` in the one error body, with ``Retry-After`` in whole
seconds (at least 1). It never reaches the handler, so its ``Idempotency-Key`` stays free for the retry.

If the limiter's store does not answer, the request goes through unchecked (``FailOpen``): refusing
payments because Redis is down would turn a cache outage into a payments outage, while the limits only
defend against abuse that Redis being down does not make more likely. Such requests are counted and
logged at most once every ``WARN_EVERY_SECONDS``.

An app without a limiter (``setup_rate_limits`` not called, or ``RATE_LIMITS_ENABLED=false``) limits
nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Final, Protocol

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from payments.domain.errors import DependencyUnavailable
from payments.pipeline.settings import RateLimitSettings
from payments.web.auth import needs_token
from payments.web.client_ip import client_ip
from payments.web.keys import PRINCIPAL_KEY


class Limit(StrEnum):
    PER_IP = "ip"  #: every API request from one client address (``RATE_LIMIT_PER_IP``)
    PER_USER = "user"  #: every API request of one authenticated user (``RATE_LIMIT_PER_USER``)
    WRITES = "writes"  #: payment create and verify and refund initiate of one user (``RATE_LIMIT_WRITES``)


#: (method, route template) of the writes that move money; they count against ``Limit.WRITES`` too.
WRITE_ROUTES: Final = frozenset(
    {
        (hdrs.METH_POST, "/api/v1/payments/create"),
        (hdrs.METH_POST, "/api/v1/payments/verify"),
        (hdrs.METH_POST, "/api/v1/refunds/initiate"),
    }
)
#: While the store is down every request would warn; once a minute says the same.
WARN_EVERY_SECONDS: Final = 60.0

_log = logging.getLogger(__name__)


class RateLimiter(Protocol):
    """Counts requests against named limits (``Limit``), each kept per subject (an address, a user)."""

    async def hit(self, limit: str, subject: str) -> float | None:
        """Count one request of ``subject`` against ``limit``.

        Returns None if it is within the limit; otherwise the seconds until one would be (the refused
        request is not counted). Raises ``DependencyUnavailable`` if the store did not answer.
        """
        ...


class FailOpen:
    """A ``RateLimiter`` that lets a request through when the one it wraps cannot answer."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        warn_every_seconds: float = WARN_EVERY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._warn_every = warn_every_seconds
        self._monotonic = monotonic
        self._warned_at: float | None = None
        self._since_warning = 0
        #: Requests let through unchecked since the app started.
        self.unchecked = 0

    async def hit(self, limit: str, subject: str) -> float | None:
        try:
            return await self._limiter.hit(limit, subject)
        except DependencyUnavailable as error:
            self.unchecked += 1
            self._since_warning += 1
            self._warn(error)
            return None

    def _warn(self, error: DependencyUnavailable) -> None:
        now = self._monotonic()
        if self._warned_at is not None and now - self._warned_at < self._warn_every:
            return
        _log.warning(
            "rate limits not checked, letting requests through (%d since the last warning, %d in all): %s",
            self._since_warning,
            self.unchecked,
            error.message,
        )
        self._warned_at, self._since_warning = now, 0


#: The limiter the middlewares count with; absent, nothing is limited.
RATE_LIMITER_KEY: Final[web.AppKey[RateLimiter]] = web.AppKey("rate_limiter")


def configured_limits(settings: RateLimitSettings) -> Mapping[str, str]:
    """Each ``Limit`` with its configured rate (``limits`` notation, e.g. "30/minute")."""
    return {Limit.PER_IP: settings.per_ip, Limit.PER_USER: settings.per_user, Limit.WRITES: settings.writes}


def setup_rate_limits(limiter: RateLimiter) -> Callable[[web.Application], None]:
    """A route setup that makes the middlewares count with ``limiter``, failing open."""

    def setup(app: web.Application) -> None:
        app[RATE_LIMITER_KEY] = FailOpen(limiter)

    return setup


def counted_by_address(request: web.Request) -> bool:
    """True for the routes that need a token: webhooks, Alertmanager's intake, health and metrics are not
    counted (Cashfree and Alertmanager retry a refused delivery, and probes must always answer)."""
    return needs_token(request)


def user_limits(request: web.Request) -> tuple[Limit, ...]:
    """The limits an authenticated request counts against, in the order they are checked."""
    resource = request.match_info.route.resource
    if resource is not None and (request.method, resource.canonical) in WRITE_ROUTES:
        return (Limit.PER_USER, Limit.WRITES)
    return (Limit.PER_USER,)


@web.middleware
async def address_rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request against its client address's limit, before any token is checked."""
    limiter = request.config_dict.get(RATE_LIMITER_KEY)
    if limiter is not None and counted_by_address(request):
        address = client_ip(request)
        if address is not None:  # no address (a Unix socket with no proxy): nothing to count by
            await _count(limiter, Limit.PER_IP, address)
    return await handler(request)


@web.middleware
async def user_rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request against its user's limits; the auth middleware has named the user."""
    limiter = request.config_dict.get(RATE_LIMITER_KEY)
    if limiter is not None and PRINCIPAL_KEY in request:
        user_id = request[PRINCIPAL_KEY].user_id
        for limit in user_limits(request):
            await _count(limiter, limit, user_id)
    return await handler(request)


async def _count(limiter: RateLimiter, limit: Limit, subject: str) -> None:
    retry_after = await limiter.hit(limit, subject)
    if retry_after is not None:
        # The error middleware answers it with the one error body (``rate_limited``) and keeps the header.
        raise web.HTTPTooManyRequests(headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(retry_after)))})

"""Rate limits: which limits each request counts against, how a refusal reads, and failing open.

The middlewares are driven through the real app factory with ``CountingLimiter``, a limiter that
counts in memory and implements the same ``RateLimiter`` Protocol; the Redis limiter's own window
logic is checked here over ``limits``' memory storage and in ``tests/integration`` over Redis.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiohttp import web
from limits.aio.storage import MemoryStorage

from payments.bridges.redis.rate_limits import RedisRateLimiter
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.settings import Settings, load_settings
from payments.web.auth import ALERTMANAGER_PATH, mint_token
from payments.web.rate_limits import (
    RATE_LIMITER_KEY,
    FailOpen,
    Limit,
    configured_limits,
    setup_rate_limits,
)
from tests.unit._web_support import build_app

SETTINGS = Settings()
CREATE, VERIFY, INITIATE = "/api/v1/payments/create", "/api/v1/payments/verify", "/api/v1/refunds/initiate"
READ = "/api/v1/payments/pay_1"
WEBHOOK = "/api/v1/webhooks/cashfree"
#: The paths whose handler ran: a refused request never reaches its handler.
HANDLED = web.AppKey("handled", list[str])


class CountingLimiter:
    """A ``RateLimiter`` in memory: ``rates`` allowed per (limit, subject), then ``retry_after``."""

    def __init__(self, rates: dict[str, int] | None = None, *, retry_after: float = 41.2) -> None:
        self.rates = rates or {}
        self.retry_after = retry_after
        self.hits: list[tuple[str, str]] = []
        self._counts: Counter[tuple[str, str]] = Counter()

    async def hit(self, limit: str, subject: str) -> float | None:
        self.hits.append((limit, subject))
        if self._counts[limit, subject] >= self.rates.get(limit, 1_000_000):
            return self.retry_after
        self._counts[limit, subject] += 1
        return None


class UnavailableLimiter:
    """A ``RateLimiter`` whose store is down."""

    def __init__(self) -> None:
        self.calls = 0

    async def hit(self, limit: str, subject: str) -> float | None:
        self.calls += 1
        raise DependencyUnavailable("rate limits: Redis did not answer: ConnectionError")


async def answered(request: web.Request) -> web.Response:
    request.app[HANDLED].append(request.path)
    return web.json_response({"ok": True})


def routes(limiter: CountingLimiter | UnavailableLimiter | None):
    """The limited routes at their real templates, each answering 200; ``limiter`` set up if given."""

    def setup(app: web.Application) -> None:
        app[HANDLED] = []
        for path in (CREATE, VERIFY, INITIATE, WEBHOOK, ALERTMANAGER_PATH, "/api/v1/payments/history"):
            app.router.add_post(path, answered)
        app.router.add_get("/api/v1/payments/{paymentId}", answered)
        if limiter is not None:
            setup_rate_limits(limiter)(app)

    return setup


def bearer(user_id: str) -> dict[str, str]:
    token = mint_token(SETTINGS.security, user_id=user_id, admin=False, now=datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def limiter() -> CountingLimiter:
    return CountingLimiter()


@pytest.fixture
async def client(aiohttp_client, limiter):
    return await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))


# --- which limits apply ----------------------------------------------------------------------------


async def test_a_read_counts_against_the_address_then_the_user(client, limiter):
    response = await client.get(READ, headers=bearer("u1"))

    assert response.status == 200
    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1"), (Limit.PER_USER, "u1")]


@pytest.mark.parametrize("path", [CREATE, VERIFY, INITIATE])
async def test_money_moving_writes_count_against_the_writes_limit_as_well(client, limiter, path):
    response = await client.post(path, headers=bearer("u1"))

    assert response.status == 200
    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1"), (Limit.PER_USER, "u1"), (Limit.WRITES, "u1")]


async def test_other_posts_are_not_writes(client, limiter):
    await client.post("/api/v1/payments/history", headers=bearer("u1"))

    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1"), (Limit.PER_USER, "u1")]


async def test_a_request_without_a_token_counts_against_its_address_only(client, limiter):
    response = await client.get(READ)

    assert response.status == 401
    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1")]


@pytest.mark.parametrize(
    ("method", "path"), [("POST", WEBHOOK), ("POST", ALERTMANAGER_PATH), ("GET", "/health")]
)
async def test_webhooks_alertmanager_and_health_are_never_counted(client, limiter, method, path):
    await client.request(method, path)

    assert limiter.hits == []


async def test_an_unknown_api_path_is_counted_by_address(client, limiter):
    response = await client.get("/api/v1/nothing-here")

    assert response.status == 401
    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1")]


# --- client addresses ------------------------------------------------------------------------------


async def test_a_trusted_proxy_names_the_address_counted(aiohttp_client):
    limiter = CountingLimiter()
    settings = load_settings({"TRUSTED_PROXIES": "127.0.0.1/32"})
    client = await aiohttp_client(build_app(settings=settings, routes=routes(limiter)))

    await client.get(READ, headers={"X-Forwarded-For": "198.51.100.7"})

    assert limiter.hits == [(Limit.PER_IP, "198.51.100.7")]


async def test_an_untrusted_peer_cannot_choose_the_address_it_is_counted_under(client, limiter):
    await client.get(READ, headers={"X-Forwarded-For": "198.51.100.7"})

    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1")]


# --- refusals ----------------------------------------------------------------------------------------


async def test_past_the_writes_limit_the_answer_is_429_with_retry_after_and_the_error_body(aiohttp_client):
    limiter = CountingLimiter({Limit.WRITES: 3}, retry_after=41.2)
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))

    statuses = [(await client.post(CREATE, headers=bearer("u1"))).status for _ in range(3)]
    refused = await client.post(CREATE, headers=bearer("u1"))

    assert statuses == [200, 200, 200]
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "42"  # whole seconds, rounded up
    body = await refused.json()
    assert body == {
        "error": {
            "code": "rate_limited",
            "message": "Too many requests.",
            "requestId": refused.headers["X-Request-Id"],
        }
    }
    assert client.app[HANDLED] == [CREATE] * 3


async def test_another_user_and_a_read_are_unaffected_by_one_users_writes(aiohttp_client):
    limiter = CountingLimiter({Limit.WRITES: 1})
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))
    await client.post(CREATE, headers=bearer("u1"))

    assert (await client.post(CREATE, headers=bearer("u1"))).status == 429
    assert (await client.post(CREATE, headers=bearer("u2"))).status == 200
    assert (await client.get(READ, headers=bearer("u1"))).status == 200


async def test_past_the_address_limit_even_a_bad_token_is_refused_before_it_is_checked(aiohttp_client):
    limiter = CountingLimiter({Limit.PER_IP: 2})
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))

    statuses = [(await client.get(READ, headers={"Authorization": "Bearer guess"})).status for _ in range(3)]

    assert statuses == [401, 401, 429]
    assert limiter.hits == [(Limit.PER_IP, "127.0.0.1")] * 3


async def test_a_refusal_always_asks_for_at_least_one_second(aiohttp_client):
    limiter = CountingLimiter({Limit.PER_USER: 0}, retry_after=0.0)
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))

    refused = await client.get(READ, headers=bearer("u1"))

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "1"


# --- without a limiter, and with one that cannot answer ---------------------------------------------


async def test_an_app_without_a_limiter_limits_nothing(aiohttp_client):
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(None)))

    statuses = {(await client.post(CREATE, headers=bearer("u1"))).status for _ in range(50)}

    assert RATE_LIMITER_KEY not in client.app
    assert statuses == {200}


async def test_when_the_store_is_down_requests_go_through(aiohttp_client):
    limiter = UnavailableLimiter()
    client = await aiohttp_client(build_app(settings=SETTINGS, routes=routes(limiter)))

    response = await client.post(CREATE, headers=bearer("u1"))

    assert response.status == 200
    assert limiter.calls == 3  # address, user, writes: each let through
    fail_open = client.app[RATE_LIMITER_KEY]
    assert isinstance(fail_open, FailOpen)
    assert fail_open.unchecked == 3


async def test_failing_open_warns_at_most_once_per_interval_and_counts_every_request(caplog):
    now = [1000.0]
    fail_open = FailOpen(UnavailableLimiter(), warn_every_seconds=60, monotonic=lambda: now[0])

    with caplog.at_level(logging.WARNING, logger="payments.web.rate_limits"):
        results = [await fail_open.hit(Limit.PER_USER, "u1") for _ in range(5)]
        now[0] += 59
        await fail_open.hit(Limit.PER_USER, "u1")
        now[0] += 1
        await fail_open.hit(Limit.PER_USER, "u1")

    assert results == [None] * 5
    assert fail_open.unchecked == 7
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "rate limits not checked, letting requests through (1 since the last warning"
    )
    assert "(6 since the last warning, 7 in all)" in warnings[1]


async def test_failing_open_passes_answers_through_unchanged():
    fail_open = FailOpen(CountingLimiter({Limit.WRITES: 1}, retry_after=12.5))

    assert await fail_open.hit(Limit.WRITES, "u1") is None
    assert await fail_open.hit(Limit.WRITES, "u1") == 12.5
    assert fail_open.unchecked == 0


# --- configuration and the limits-backed limiter ----------------------------------------------------


def test_each_limit_takes_its_configured_rate():
    settings = load_settings(
        {
            "RATE_LIMIT_PER_IP": "100/minute",
            "RATE_LIMIT_PER_USER": "50/minute",
            "RATE_LIMIT_WRITES": "5/minute",
        }
    )

    assert configured_limits(settings.rate_limits) == {
        Limit.PER_IP: "100/minute",
        Limit.PER_USER: "50/minute",
        Limit.WRITES: "5/minute",
    }


async def test_the_limits_backed_limiter_allows_exactly_the_rate_then_names_the_wait():
    limiter = RedisRateLimiter(MemoryStorage(), {Limit.WRITES: "3/minute", Limit.PER_USER: "1/hour"})

    allowed = [await limiter.hit(Limit.WRITES, "u1") for _ in range(3)]
    refused = await limiter.hit(Limit.WRITES, "u1")

    assert allowed == [None, None, None]
    assert refused is not None
    assert 59 < refused <= 60
    assert await limiter.hit(Limit.WRITES, "u2") is None  # each subject has its own window
    assert await limiter.hit(Limit.PER_USER, "u1") is None  # and each limit
    assert 3599 < (await limiter.hit(Limit.PER_USER, "u1") or 0) <= 3600

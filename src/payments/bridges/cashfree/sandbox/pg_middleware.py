"""What every ``/pg`` call goes through before and after its handler, in this order:

1. the ``latency_ms`` fault (real time);
2. a queued or random fault answer (see ``faults``);
3. ``x-client-id``/``x-client-secret`` (401), except Order Pay, whose session id identifies the order;
4. ``x-api-version`` required and supported (400 ``version_missing``/``version_invalid``);
5. the rate limit of the endpoint (429);
6. ``x-idempotency-key`` replay on writes (``idempotency``);
7. the handler; an "apply" fault then replaces its answer.

Every answer, errors included, carries ``x-api-version``, ``x-request-id`` (echoed, empty when not
sent), ``x-idempotency-replayed``, the ``x-ratelimit-*`` quartet and, when sent, ``x-idempotency-key``.
Routes outside ``/pg`` only get ``SandboxError`` rendered as JSON.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from payments.bridges.cashfree.sandbox.errors import (
    SandboxError,
    authentication_failed,
    bad_url,
    invalid,
    rate_limited,
    server_error,
)
from payments.bridges.cashfree.sandbox.faults import QueuedFault
from payments.bridges.cashfree.sandbox.idempotency import TTL, StoredAnswer, fingerprint, is_storable
from payments.bridges.cashfree.sandbox.jsonbody import dumps
from payments.bridges.cashfree.sandbox.ratelimit import Limit, LimitKind, Quota
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox

#: The version reported when the caller sent none (or one the sandbox does not speak).
FALLBACK_VERSION: Final = "2025-01-01"
#: What an unknown route reports as its quota.
NO_ROUTE_QUOTA: Final = Quota(60, 60, 0, LimitKind.APP_ID)


@dataclass(frozen=True)
class Endpoint:
    """One PG operation: its route, its rate limit, and how the middleware treats it."""

    name: str
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.Response]]
    limit: Limit
    write: bool = False  #: honours ``x-idempotency-key``
    public: bool = False  #: no client credentials (Order Pay)


@dataclass
class Call:
    """One PG request as the middleware sees it."""

    request: web.Request
    sandbox: Sandbox
    endpoint: Endpoint | None
    quota: Quota | None = None
    replayed: bool = False

    @property
    def limit_key(self) -> str:
        assert self.endpoint is not None
        if self.endpoint.limit.kind is LimitKind.IP:
            return self.request.remote or "unknown"
        return self.sandbox.config.app_id


def json_answer(payload: object, status: int = 200) -> web.Response:
    """A JSON answer with exact amounts (see ``jsonbody``)."""
    return web.Response(status=status, body=dumps(payload), content_type="application/json")


def error_answer(error: SandboxError) -> web.Response:
    return json_answer(error.body(), error.status)


def pg_middleware(endpoints: Mapping[str, Endpoint]) -> Middleware:
    """The middleware for the sandbox app, knowing the PG endpoints by route name."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not (request.path == "/pg" or request.path.startswith("/pg/")):
            try:
                return await handler(request)
            except SandboxError as error:
                return error_answer(error)
        call = Call(request, request.app[SANDBOX_KEY], endpoints.get(request.match_info.route.name or ""))
        latency = call.sandbox.faults.settings.latency_ms
        if latency:
            await asyncio.sleep(latency / 1000)
        try:
            response = await _answer(call, handler)
        except SandboxError as error:
            response = error_answer(error)
        _decorate(response, call)
        return response

    return middleware


async def _answer(call: Call, handler: Handler) -> web.StreamResponse:
    endpoint, sandbox = call.endpoint, call.sandbox
    if endpoint is None:
        raise bad_url()
    fault = sandbox.faults.next_for(endpoint.name)
    if fault is not None and not fault.apply:
        raise _fault_error(call, fault)
    _check_credentials(call)
    sandbox.run_due()
    call.quota = sandbox.limiter.take(endpoint.limit, call.limit_key, sandbox.now())
    if call.quota.exceeded:
        raise rate_limited(endpoint.limit.kind.value)
    response = await (_idempotent(call, handler) if endpoint.write else handler(call.request))
    if fault is not None:
        raise _fault_error(call, fault)
    return response


def _check_credentials(call: Call) -> None:
    headers, config = call.request.headers, call.sandbox.config
    assert call.endpoint is not None
    if not call.endpoint.public:
        client_id = headers.get("x-client-id", "").encode()
        secret = headers.get("x-client-secret", "").encode()
        id_ok = hmac.compare_digest(client_id, config.app_id.encode())
        if not (hmac.compare_digest(secret, config.secret_key.encode()) and id_ok):
            raise authentication_failed()
    version = headers.get("x-api-version")
    if not version:
        raise invalid("version_missing", "x-api-version header is missing")
    if version not in config.api_versions:
        raise invalid("version_invalid", f"x-api-version {version!r} is not supported")


def _fault_error(call: Call, fault: QueuedFault) -> SandboxError:
    assert call.endpoint is not None
    if fault.status != 429:
        return server_error(fault.status)
    limit, retry = call.endpoint.limit, call.sandbox.faults.settings.retry_after_seconds
    call.quota = Quota(limit.per_minute, 0, retry, limit.kind, exceeded=True)
    return rate_limited(limit.kind.value)


async def _idempotent(call: Call, handler: Handler) -> web.StreamResponse:
    request, sandbox = call.request, call.sandbox
    assert call.endpoint is not None
    key = request.headers.get("x-idempotency-key")
    if not key:
        return await handler(request)
    scope, now = f"{call.endpoint.method} {call.endpoint.path}", sandbox.now()
    # Read the body first: from here to remember() nothing awaits, so a concurrent twin cannot slip in.
    print_ = fingerprint(request.path, await request.read())
    stored = sandbox.idempotency.replay(scope, key, print_, now)
    if stored is not None:
        call.replayed = True
        return web.Response(status=stored.status, body=stored.body, content_type=stored.content_type)
    try:
        response = await handler(request)
    except SandboxError as error:
        response = error_answer(error)
    if (
        isinstance(response, web.Response)
        and isinstance(response.body, bytes)
        and is_storable(response.status)
    ):
        answer = StoredAnswer(print_, response.status, response.body, response.content_type, now + TTL)
        sandbox.idempotency.remember(scope, key, answer)
    return response


def _decorate(response: web.StreamResponse, call: Call) -> None:
    headers, sandbox = call.request.headers, call.sandbox
    version = headers.get("x-api-version", "")
    quota = call.quota or _peek(call)
    response.headers["x-api-version"] = (
        version if version in sandbox.config.api_versions else FALLBACK_VERSION
    )
    response.headers["x-request-id"] = headers.get("x-request-id", "")
    response.headers["x-idempotency-replayed"] = "true" if call.replayed else "false"
    if "x-idempotency-key" in headers:
        response.headers["x-idempotency-key"] = headers["x-idempotency-key"]
    response.headers["x-ratelimit-limit"] = str(quota.limit)
    response.headers["x-ratelimit-remaining"] = str(quota.remaining)
    response.headers["x-ratelimit-retry"] = str(quota.retry)
    response.headers["x-ratelimit-type"] = quota.kind.value


def _peek(call: Call) -> Quota:
    if call.endpoint is None:
        return NO_ROUTE_QUOTA
    return call.sandbox.limiter.peek(call.endpoint.limit, call.limit_key, call.sandbox.now())

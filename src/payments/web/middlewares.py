"""The middlewares every route runs through, outermost first (see ``MIDDLEWARES``).

- ``trace_middleware`` continues the caller's W3C trace, makes it current for the handler (so every log
  line carries its ids) and returns the ids in ``X-Request-Id``, ``X-Correlation-Id`` and ``traceparent``.
- ``metrics_middleware`` observes each request's latency by route template, method and final status (not
  long-lived streams, which set ``LONG_LIVED_KEY``: their duration is a session's length).
- ``error_middleware`` turns the domain error tree, aiohttp's HTTP errors and anything unexpected into
  the one error body ``{"error": {"code", "message", "requestId"}}`` (DESIGN §7, STYLE §8).
- ``auth_middleware`` (``web/auth.py``) requires a bearer token on ``/api/v1/`` routes; it sits inside
  the error mapping so a refused token gets the one error body, with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Final

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from payments.domain.errors import (
    PaymentsError,
    Retry,
    Unauthenticated,
)
from payments.pipeline.error_status import status_for
from payments.pipeline.logging import mask_text
from payments.pipeline.tracing import TraceContext, current_trace, use_trace
from payments.web.auth import auth_middleware
from payments.web.cors import preflight_middleware
from payments.web.keys import LONG_LIVED_KEY, METRICS_KEY, TRACE_KEY
from payments.web.rate_limits import address_rate_limit_middleware, user_rate_limit_middleware

#: aiohttp's HTTP errors -> our codes; any other status gets a code made from its reason phrase.
HTTP_ERROR_CODES: Final[Mapping[int, tuple[str, str]]] = {
    400: ("bad_request", "The request is malformed."),
    401: ("unauthenticated", "Authentication is required."),
    403: ("forbidden", "You are not allowed to do that."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "That method is not allowed on this resource."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "That content type is not supported."),
    429: ("rate_limited", "Too many requests."),
}

_INTERNAL_ERROR: Final = ("internal_error", "Internal server error.")
#: Metric label for requests no route matched (404, 405): never the raw path, which is unbounded.
UNMATCHED_ROUTE: Final = "unmatched"
#: Metric label status for a request whose client went away before we answered (nginx's convention).
CLIENT_CLOSED_STATUS: Final = 499
#: Methods kept as metric labels; anything else a client invents is counted as "OTHER".
_KNOWN_METHODS: Final = frozenset(hdrs.METH_ALL)
#: The exception's own headers that describe its plain-text body, which we replace.
_BODY_HEADERS: Final = frozenset({"content-type", "content-length"})
#: RFC 7235 §3.1: a 401 must say which scheme to authenticate with.
_WWW_AUTHENTICATE: Final = 'Bearer realm="commdesk-payments"'

_log = logging.getLogger(__name__)


@web.middleware
async def trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the request inside its ``TraceContext`` and echo the ids on the response."""
    trace = TraceContext.from_http_headers(request.headers)
    request[TRACE_KEY] = trace
    with use_trace(trace):
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects and the like still carry the ids
            exc.headers.update(_trace_headers(trace))
            raise
    response.headers.update(_trace_headers(trace))
    return response


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Observe the request's latency by route template, method and the status the client got."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED_STATUS
        raise
    finally:
        if not request.get(LONG_LIVED_KEY, False):
            request.config_dict[METRICS_KEY].http_requests.labels(
                route=route_label(request),
                method=request.method if request.method in _KNOWN_METHODS else "OTHER",
                status=str(status),
            ).observe(time.perf_counter() - started)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with the one error body; never leak internals to the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except PaymentsError as error:
        return domain_error_response(error)
    except Exception:
        _log.exception("unhandled error in %s %s", request.method, route_label(request))
        return error_response(500, *_INTERNAL_ERROR)


#: Outermost first: the trace wraps everything so error bodies and logs carry its ids; metrics sit
#: outside the error mapping so they record the status the client really got; authentication sits
#: inside it so a refused token is answered like any other error.
MIDDLEWARES: Final[tuple[Middleware, ...]] = (
    trace_middleware,
    metrics_middleware,
    error_middleware,
    # Rate limits (web/rate_limits.py): by address before the token is checked, so token-guessing
    # floods are limited too; by user after it, once the user is known.
    address_rate_limit_middleware,
    # A CORS preflight carries no credentials: its answer (web/cors.py) comes before authentication.
    preflight_middleware,
    auth_middleware,
    user_rate_limit_middleware,
)


def route_label(request: web.Request) -> str:
    """The matched route's template (``/api/v1/payments/{paymentId}``), or ``unmatched``."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one error body, with the current request id."""
    trace = current_trace()
    body = {"error": {"code": code, "message": message, "requestId": trace.request_id if trace else None}}
    return web.json_response(body, status=status, headers=headers)


def domain_error_response(error: PaymentsError) -> web.Response:
    """The one error body for a domain error, as the error middleware answers it."""
    status = status_for(error)
    if status == 500:
        _log.error("unmapped domain error %s", type(error).__name__, exc_info=error)
        return error_response(500, *_INTERNAL_ERROR)
    headers: dict[str, str] = {}
    if isinstance(error, Unauthenticated):
        headers[hdrs.WWW_AUTHENTICATE] = _WWW_AUTHENTICATE
    if isinstance(error, Retry):
        _log.warning("answering 503: %s", error.message)
        if error.defer is not None:
            headers[hdrs.RETRY_AFTER] = str(max(0, math.ceil(error.defer)))
    # 4xx messages are written for the client; a transient error's may name hosts, so it gets the default.
    message = _default_message(error) if status >= 500 else mask_text(error.message)
    return error_response(status, error.code, message, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    # The standard phrase, not ``exc.reason``: whoever raised may have put details in a custom reason.
    phrase = _standard_phrase(exc.status)
    code, message = HTTP_ERROR_CODES.get(exc.status, (_code_from_phrase(phrase), f"{phrase}."))
    # Keep headers such as Allow (405) and Retry-After; drop the ones describing aiohttp's text body.
    headers = {name: value for name, value in exc.headers.items() if name.lower() not in _BODY_HEADERS}
    return error_response(exc.status, code, message, headers=headers)


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code_from_phrase(phrase: str) -> str:
    return "_".join(phrase.lower().replace("-", " ").split())


def _default_message(error: PaymentsError) -> str:
    doc = type(error).__doc__ or type(error).__name__
    return doc.strip().splitlines()[0]


def _trace_headers(trace: TraceContext) -> dict[str, str]:
    return {
        "X-Request-Id": trace.request_id,
        "X-Correlation-Id": trace.correlation_id,
        "traceparent": trace.traceparent,
    }

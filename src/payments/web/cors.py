"""CORS for an allow-list of browser origins (DESIGN §8), with ``aiohttp-cors``.

When ``CORS_ALLOWED_ORIGINS`` names origins, every ``/api/v1/`` route that takes a bearer token lets
exactly those origins call it from a browser: the webhook routes and Alertmanager's intake are
server-to-server (they authenticate by other means, ``web/auth.py``) and the admin page is
same-origin, so they stay closed. Empty, nothing is CORS-enabled and browsers keep the same-origin
rule. For an allowed origin:

- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) for one of the route's methods,
  asking only for ``ALLOWED_REQUEST_HEADERS``, is answered 200 with ``Access-Control-Allow-Origin``
  (that exact origin), ``-Allow-Methods``, ``-Allow-Headers`` and ``Access-Control-Max-Age: 600``;
- an actual request's answer carries ``Access-Control-Allow-Origin`` and
  ``Access-Control-Expose-Headers`` (``EXPOSED_HEADERS``).

Credentials are never allowed: the API takes bearer tokens, not cookies. Any other origin gets no
CORS header on an answer, and its preflight is refused with 403 (the one error body).

A preflight carries no ``Authorization`` (browsers never send credentials on it), so it must not meet
the auth middleware: ``preflight_middleware`` sits just before it (``MIDDLEWARES``) and answers the
preflight routes ``aiohttp-cors`` added, and only those, with their handler. ``setup_cors`` must run
after every route setup: ``aiohttp-cors`` configures routes that already exist.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Final

import aiohttp_cors
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from payments.web.auth import API_PREFIX, UNAUTHENTICATED_PREFIXES, UNAUTHENTICATED_ROUTES

#: Request headers a browser client may send (checked against a preflight's list).
ALLOWED_REQUEST_HEADERS: Final = (
    hdrs.AUTHORIZATION,
    hdrs.CONTENT_TYPE,
    "Idempotency-Key",
    "X-Request-Id",
    "X-Correlation-Id",
    "traceparent",
    "X-Device-Fingerprint",
)
#: Response headers beyond the CORS-safelisted ones that browser code may read.
EXPOSED_HEADERS: Final = ("X-Request-Id", "X-Correlation-Id", "traceparent", hdrs.RETRY_AFTER, hdrs.LOCATION)
#: Seconds a browser may cache a preflight's answer.
PREFLIGHT_MAX_AGE_SECONDS: Final = 600
#: The ``OPTIONS`` routes ``aiohttp-cors`` added, which ``preflight_middleware`` answers.
PREFLIGHT_ROUTES_KEY: Final[web.AppKey[frozenset[web.AbstractRoute]]] = web.AppKey("cors_preflight_routes")


def setup_cors(app: web.Application, allowed_origins: Iterable[str]) -> None:
    """Open the bearer-token API routes to ``allowed_origins``; with none, open nothing."""
    origins = tuple(allowed_origins)
    if not origins:
        app[PREFLIGHT_ROUTES_KEY] = frozenset()
        return
    resources = [
        resource
        for resource in app.router.resources()
        if isinstance(resource, web.Resource) and is_cross_origin_api(resource.canonical)
    ]
    # Routes of one path added under different names are separate resources, and a preflight reaches
    # only the first of them: each one's preflight must allow the methods of all of them.
    methods: dict[str, set[str]] = defaultdict(set)
    for resource in resources:
        methods[resource.canonical].update(route.method for route in resource)
    cors = aiohttp_cors.setup(app)
    preflights: set[web.AbstractRoute] = set()
    for resource in resources:
        cors.add(resource, _options(origins, sorted(methods[resource.canonical])))
        preflights.update(route for route in resource if route.method == hdrs.METH_OPTIONS)
    app[PREFLIGHT_ROUTES_KEY] = frozenset(preflights)


def is_cross_origin_api(template: str) -> bool:
    """Whether a route template is one browsers on the allowed origins may call."""
    if template.startswith(UNAUTHENTICATED_PREFIXES) or template in UNAUTHENTICATED_ROUTES:
        return False
    return template.startswith(API_PREFIX)


def _options(origins: Iterable[str], methods: Iterable[str]) -> Mapping[str, aiohttp_cors.ResourceOptions]:
    options = aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        allow_headers=ALLOWED_REQUEST_HEADERS,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        allow_methods=tuple(methods),
    )
    return dict.fromkeys(origins, options)


@web.middleware
async def preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer a CORS preflight with its route's handler, skipping the middlewares inside (auth)."""
    if request.match_info.route in request.config_dict[PREFLIGHT_ROUTES_KEY]:
        return await request.match_info.handler(request)
    return await handler(request)

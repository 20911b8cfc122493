"""The security headers on every response (DESIGN §8: the Helmet-equivalent set).

``add_security_headers`` runs in ``on_response_prepare`` (``create_app`` registers it), so it reaches
every response the app prepares: handlers' answers, the error middleware's bodies, aiohttp's own
404/405/413, ``/health``, ``/metrics``, the webhook route, the admin page and the SSE stream (headers
leave with its first bytes, when the handler calls ``prepare``). The values are built with ``secure``:

=================================  ===================================================================
Content-Security-Policy            ``default-src 'none'; frame-ancestors 'none'``: JSON loads nothing,
                                   and nothing may frame it. The admin page sends its own policy
                                   (``web/admin_alerts.py``), which allows its own script, style and
                                   calls back to us; a route's own policy is kept.
Strict-Transport-Security          ``max-age=31536000; includeSubDomains``: one year, HTTPS only.
X-Content-Type-Options             ``nosniff``
X-Frame-Options                    ``DENY`` (for browsers without ``frame-ancestors``)
Referrer-Policy                    ``no-referrer``: our URLs carry payment ids.
Cross-Origin-Opener-Policy         ``same-origin``
Cross-Origin-Resource-Policy       ``same-origin``: other sites cannot embed our answers; CORS (``web/
                                   cors.py``) is how the allowed origins read them.
Permissions-Policy                 every powerful feature off (``PERMISSIONS_OFF``): an API and an
                                   admin page use none of them.
Cache-Control                      ``no-store``: answers hold personal data. A route that sets its own
                                   (the invoice's ``private, no-store``, the admin page's ``no-cache``)
                                   keeps it.
=================================  ===================================================================

Only Content-Security-Policy and Cache-Control are defaults a route may replace; the rest are set on
every response whatever a handler wrote, so no route can weaken them. ``Server`` is replaced in
``web/app.py``. Responses aiohttp writes before any application sees the request (an unparsable
request line) carry none of these: there is no app to run the hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import hdrs, web
from secure import (
    CacheControl,
    ContentSecurityPolicy,
    CrossOriginOpenerPolicy,
    CrossOriginResourcePolicy,
    PermissionsPolicy,
    ReferrerPolicy,
    Secure,
    StrictTransportSecurity,
    XContentTypeOptions,
    XFrameOptions,
)

#: One year, the value HSTS preload lists ask for.
HSTS_MAX_AGE_SECONDS: Final = 31_536_000
#: Browser features switched off for every page we serve (MDN's Permissions-Policy list, minus the
#: experimental ones browsers warn about).
PERMISSIONS_OFF: Final = (
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "fullscreen",
    "geolocation",
    "gyroscope",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "picture-in-picture",
    "publickey-credentials-get",
    "screen-wake-lock",
    "sync-xhr",
    "usb",
    "xr-spatial-tracking",
)
#: Headers a route may set for itself; the policy's value is only the default.
ROUTE_OVERRIDABLE: Final = frozenset({hdrs.CONTENT_SECURITY_POLICY.lower(), hdrs.CACHE_CONTROL.lower()})


def _permissions_policy() -> PermissionsPolicy:
    policy = PermissionsPolicy()
    for feature in PERMISSIONS_OFF:
        policy.add_directive(feature)  # no allowlist: "feature=()", off for every origin
    return policy


def _policy() -> Secure:
    return Secure(
        csp=ContentSecurityPolicy().default_src("'none'").frame_ancestors("'none'"),
        hsts=StrictTransportSecurity().max_age(HSTS_MAX_AGE_SECONDS).include_subdomains(),
        xcto=XContentTypeOptions().nosniff(),
        xfo=XFrameOptions().deny(),
        referrer=ReferrerPolicy().no_referrer(),
        coop=CrossOriginOpenerPolicy().same_origin(),
        corp=CrossOriginResourcePolicy().same_origin(),
        permissions=_permissions_policy(),
        cache=CacheControl().no_store(),
    ).validate_and_normalize_headers(on_invalid="raise", strict=True)


#: Header name -> value, computed once at import (pure data: no I/O).
SECURITY_HEADERS: Final[Mapping[str, str]] = dict(_policy().headers)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: the policy above, keeping a route's own CSP and Cache-Control."""
    for name, value in SECURITY_HEADERS.items():
        if name.lower() in ROUTE_OVERRIDABLE:
            response.headers.setdefault(name, value)
        else:
            response.headers[name] = value

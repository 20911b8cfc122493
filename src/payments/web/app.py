"""The aiohttp application factory (DESIGN §7).

``create_app`` is called by the composition root with everything the routes need, already built;
nothing here opens a connection or reads the environment. ``ROUTE_SETUPS`` are the routes every
process serves (health and metrics: workers serve them on their metrics port); the web process passes
the API's ``setup_*(app)`` functions in ``extra_setups``.

Every response gets the security headers (``web/security_headers.py``) and our ``Server`` value from
``on_response_prepare`` hooks, so aiohttp's own error pages and streams carry them too. CORS
(``web/cors.py``) is configured last, once every route exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from payments.pipeline.metrics import Metrics
from payments.pipeline.settings import Settings
from payments.web.client_ip import TRUSTED_PROXIES_KEY
from payments.web.cors import setup_cors
from payments.web.health import HealthProbes, setup_health
from payments.web.keys import METRICS_KEY, PROBES_KEY, REGISTRY_KEY, SETTINGS_KEY, VERSION_KEY
from payments.web.middlewares import MIDDLEWARES
from payments.web.security_headers import add_security_headers

#: Adds one capability's routes (and their state) to the app.
RouteSetup = Callable[[web.Application], None]

#: Replaces aiohttp's ``Server: Python/3.x aiohttp/3.y``, which tells an attacker what to look up.
SERVER_HEADER: Final = "commdesk-payments"
#: The distribution name in pyproject.toml, for the version ``/health`` reports.
_DISTRIBUTION: Final = "commdesk-payments"


@dataclass(frozen=True)
class WebDependencies:
    """Everything the web app needs, built by the composition root."""

    settings: Settings
    metrics: Metrics
    registry: CollectorRegistry
    probes: HealthProbes


def setup_metrics(app: web.Application) -> None:
    """Serve the Prometheus registry at ``GET /metrics`` when ``PROMETHEUS_ENABLED``."""
    if app[SETTINGS_KEY].app.prometheus_enabled:
        app.router.add_get("/metrics", metrics_endpoint)


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Every metric of the registry in the Prometheus text format."""
    body = generate_latest(request.config_dict[REGISTRY_KEY])
    return web.Response(body=body, headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


#: The routes every process serves; the API's routes come in as ``extra_setups``.
ROUTE_SETUPS: Final[tuple[RouteSetup, ...]] = (setup_health, setup_metrics)


def create_app(deps: WebDependencies, *, extra_setups: Sequence[RouteSetup] = ()) -> web.Application:
    """Build the web application: middlewares, state under typed keys, every route setup, then CORS."""
    app = web.Application(client_max_size=deps.settings.web.max_body_bytes, middlewares=MIDDLEWARES)
    app[SETTINGS_KEY] = deps.settings
    app[TRUSTED_PROXIES_KEY] = tuple(
        ipaddress.ip_network(proxy, strict=False) for proxy in deps.settings.web.trusted_proxies
    )
    app[METRICS_KEY] = deps.metrics
    app[REGISTRY_KEY] = deps.registry
    app[PROBES_KEY] = deps.probes
    app[VERSION_KEY] = _installed_version()
    app.on_response_prepare.append(_replace_server_header)
    app.on_response_prepare.append(add_security_headers)
    for setup in (*ROUTE_SETUPS, *extra_setups):
        setup(app)
    setup_cors(app, deps.settings.web.cors_allowed_origins)
    return app


async def _replace_server_header(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp only sets Server when it is missing (setdefault), so a value set here wins.
    response.headers[hdrs.SERVER] = SERVER_HEADER


def _installed_version() -> str:
    try:
        return version(_DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"

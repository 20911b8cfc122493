"""Liveness and dependency health routes (DESIGN §7).

``GET /health`` answers from memory, so an orchestrator's liveness check never restarts the process
because PostgreSQL is slow. ``GET /health/database``, ``/health/redis`` and ``/health/queues`` each run
one probe under a timeout and answer 503 with a short reason when it fails, for readiness checks and
dashboards. Probes are plain async callables built by the composition root.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web

from payments.domain.errors import PaymentsError
from payments.pipeline.logging import mask_text
from payments.web.keys import PROBES_KEY, SETTINGS_KEY, VERSION_KEY

#: A dependency check: returns details to show (latency, versions, depths) or raises when unhealthy.
Probe = Callable[[], Awaitable[Mapping[str, Any]]]

#: A probe slower than this counts as down: a readiness check must answer before its own timeout.
DEFAULT_PROBE_TIMEOUT_SECONDS: Final = 3.0
#: Reasons are for people reading a dashboard, not for stack traces.
_MAX_REASON_LENGTH: Final = 200

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthProbes:
    """The dependency checks behind the ``/health/*`` routes."""

    database: Probe
    redis: Probe
    queues: Probe
    #: Seconds each probe may take; tests pass 0 to time a hanging probe out at once.
    timeout_seconds: float = DEFAULT_PROBE_TIMEOUT_SECONDS


def setup_health(app: web.Application) -> None:
    """Add the health routes to ``app``."""
    app.router.add_get("/health", liveness)
    app.router.add_get("/health/database", database_health)
    app.router.add_get("/health/redis", redis_health)
    app.router.add_get("/health/queues", queues_health)


async def liveness(request: web.Request) -> web.Response:
    """The process is up and serving; no dependency is called."""
    app = request.config_dict
    body = {"status": "ok", "service": app[SETTINGS_KEY].app.service_name, "version": app[VERSION_KEY]}
    return _no_store(web.json_response(body))


async def database_health(request: web.Request) -> web.Response:
    """PostgreSQL answers."""
    probes = request.config_dict[PROBES_KEY]
    return await run_probe("database", probes.database, timeout_seconds=probes.timeout_seconds)


async def redis_health(request: web.Request) -> web.Response:
    """Redis answers."""
    probes = request.config_dict[PROBES_KEY]
    return await run_probe("redis", probes.redis, timeout_seconds=probes.timeout_seconds)


async def queues_health(request: web.Request) -> web.Response:
    """RabbitMQ answers and the queues exist."""
    probes = request.config_dict[PROBES_KEY]
    return await run_probe("queues", probes.queues, timeout_seconds=probes.timeout_seconds)


async def run_probe(name: str, probe: Probe, *, timeout_seconds: float) -> web.Response:
    """Run ``probe`` under ``timeout_seconds``: 200 with its details, or 503 with a short, safe reason."""
    try:
        async with asyncio.timeout(timeout_seconds):
            details = await probe()
    except TimeoutError:
        _log.warning("health probe %s timed out after %ss", name, timeout_seconds)
        return _unavailable(f"timed out after {timeout_seconds:g}s")
    except Exception as error:  # any failure of a dependency means "unavailable", whatever its type
        _log.warning("health probe %s failed", name, exc_info=True)
        return _unavailable(_reason(error))
    return _no_store(web.json_response({"status": "ok", "details": dict(details)}))


def _reason(error: Exception) -> str:
    # Our own errors carry a message written for people; a library's may quote a DSN, so only its type.
    reason = error.message if isinstance(error, PaymentsError) else type(error).__name__
    return mask_text(reason)[:_MAX_REASON_LENGTH]


def _unavailable(reason: str) -> web.Response:
    return _no_store(web.json_response({"status": "unavailable", "reason": reason}, status=503))


def _no_store(response: web.Response) -> web.Response:
    # A cached health answer is a wrong health answer.
    response.headers["Cache-Control"] = "no-store"
    return response

"""Builders shared by the web tests: real settings, metrics and registry; fake probes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from payments.pipeline import metrics
from payments.pipeline.settings import Settings
from payments.web.app import RouteSetup, WebDependencies, create_app
from payments.web.health import HealthProbes, Probe


def returning(details: Mapping[str, Any]) -> Probe:
    """A healthy probe answering ``details``."""

    async def probe() -> Mapping[str, Any]:
        return details

    return probe


def raising(error: Exception) -> Probe:
    """An unhealthy probe."""

    async def probe() -> Mapping[str, Any]:
        raise error

    return probe


def healthy_probes(**overrides: Any) -> HealthProbes:
    fields: dict[str, Any] = {
        "database": returning({"server": "postgres"}),
        "redis": returning({"server": "redis"}),
        "queues": returning({"payments.q": {"messages": 0}}),
    }
    return HealthProbes(**(fields | overrides))


def build_app(
    *,
    settings: Settings | None = None,
    probes: HealthProbes | None = None,
    routes: RouteSetup | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    registry = registry if registry is not None else CollectorRegistry()
    deps = WebDependencies(
        settings=settings if settings is not None else Settings(),
        metrics=metrics.create(registry),
        registry=registry,
        probes=probes if probes is not None else healthy_probes(),
    )
    return create_app(deps, extra_setups=[routes] if routes else ())

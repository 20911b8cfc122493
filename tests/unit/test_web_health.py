from __future__ import annotations

import asyncio
from collections.abc import Mapping
from importlib.metadata import version
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from payments.domain.errors import DependencyUnavailable
from payments.pipeline.settings import AppSettings, Settings
from payments.web.health import DEFAULT_PROBE_TIMEOUT_SECONDS, HealthProbes
from tests.unit._web_support import build_app, healthy_probes, raising, returning

DEPENDENCIES = ["database", "redis", "queues"]


async def test_liveness_is_ok_with_service_and_version_without_calling_any_dependency(
    aiohttp_client: AiohttpClient,
):
    never = raising(AssertionError("liveness must not call a dependency"))
    probes = HealthProbes(database=never, redis=never, queues=never)
    settings = Settings(app=AppSettings(service_name="payments-under-test"))
    client = await aiohttp_client(build_app(settings=settings, probes=probes))

    response = await client.get("/health")

    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "service": "payments-under-test",
        "version": version("commdesk-payments"),
    }
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_a_dependency_route_is_ok_with_the_probe_details(
    aiohttp_client: AiohttpClient, dependency: str
):
    probes = healthy_probes(**{dependency: returning({"latencySeconds": 0.002, "checked": dependency})})
    client = await aiohttp_client(build_app(probes=probes))

    response = await client.get(f"/health/{dependency}")

    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "details": {"latencySeconds": 0.002, "checked": dependency},
    }


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_a_dependency_route_is_unavailable_with_the_domain_reason_when_the_probe_raises(
    aiohttp_client: AiohttpClient, dependency: str
):
    probes = healthy_probes(**{dependency: raising(DependencyUnavailable(f"{dependency} is not answering"))})
    client = await aiohttp_client(build_app(probes=probes))

    response = await client.get(f"/health/{dependency}")

    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "reason": f"{dependency} is not answering"}


async def test_a_foreign_exception_is_reported_by_its_type_only(aiohttp_client: AiohttpClient):
    leaky = ConnectionRefusedError("connect to postgresql://app:pg-pass-1@db:5432 refused")
    client = await aiohttp_client(build_app(probes=healthy_probes(database=raising(leaky))))

    response = await client.get("/health/database")

    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "reason": "ConnectionRefusedError"}


async def test_a_secret_in_a_domain_reason_is_masked(aiohttp_client: AiohttpClient):
    error = DependencyUnavailable("cannot reach amqp://svc:mq-pass-2@rabbit:5672/")
    client = await aiohttp_client(build_app(probes=healthy_probes(queues=raising(error))))

    body = await (await client.get("/health/queues")).json()

    assert body["reason"] == "cannot reach amqp://svc:***@rabbit:5672/"


@pytest.mark.parametrize("dependency", DEPENDENCIES)
async def test_a_probe_that_hangs_past_the_timeout_is_unavailable(
    aiohttp_client: AiohttpClient, dependency: str
):
    never_set = asyncio.Event()

    async def hang() -> Mapping[str, Any]:
        await never_set.wait()
        return {}

    # A zero timeout fires at the probe's first wait, so the test spends no wall-clock time.
    probes = HealthProbes(
        **{name: hang if name == dependency else returning({}) for name in DEPENDENCIES}, timeout_seconds=0
    )
    client = await aiohttp_client(build_app(probes=probes))

    response = await client.get(f"/health/{dependency}")

    assert response.status == 503
    assert await response.json() == {"status": "unavailable", "reason": "timed out after 0s"}


def test_probes_time_out_after_three_seconds_unless_told_otherwise():
    assert healthy_probes().timeout_seconds == DEFAULT_PROBE_TIMEOUT_SECONDS == 3.0

"""CORS: the allowed origins, and only they, may call the bearer-token API from a browser."""

from __future__ import annotations

import re

import pytest
from aiohttp import hdrs

from payments.web.auth import ALERTMANAGER_PATH
from tests.unit.web_payments._api import a_body
from tests.unit.web_security._site import (
    ALLOWED_ORIGIN,
    EXPECTED_HEADERS,
    OTHER_ORIGIN,
    Site,
    security_headers_of,
    site_settings,
)
from tests.unit.web_webhooks._ingest import BODY, PATH, signed

CREATE = "/api/v1/payments/create"
HISTORY = "/api/v1/payments/history"
SECOND_ORIGIN = "http://localhost:5173"
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
)
#: Every request header a browser client may send, as a browser lists them (lower case).
ALLOWED = (
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
    "x-correlation-id",
    "traceparent",
    "x-device-fingerprint",
)
EXPOSED = {"X-Request-Id", "X-Correlation-Id", "traceparent", "Retry-After", "Location"}


def preflight(origin: str, method: str = "POST", headers: tuple[str, ...] = ALLOWED) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": ", ".join(headers),
    }


def cors_headers(response) -> dict[str, str]:
    return {name: response.headers[name] for name in CORS_HEADERS if name in response.headers}


@pytest.fixture
def site() -> Site:
    return Site(site_settings(origins=(ALLOWED_ORIGIN, SECOND_ORIGIN)))


@pytest.mark.parametrize("origin", [ALLOWED_ORIGIN, SECOND_ORIGIN])
async def test_a_preflight_from_an_allowed_origin_needs_no_token_and_allows_the_request(client, site, origin):
    response = await client.options(CREATE, headers=preflight(origin))

    assert response.status == 200
    headers = cors_headers(response)
    assert set(headers.pop("Access-Control-Allow-Headers").lower().split(",")) == set(ALLOWED)
    assert headers == {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Max-Age": "600",
    }
    assert "WWW-Authenticate" not in response.headers
    assert security_headers_of(response.headers) == EXPECTED_HEADERS
    assert "X-Request-Id" in response.headers  # it still ran through the trace middleware
    assert site.nothing_stored()


async def test_a_preflight_from_another_origin_is_refused_without_cors_headers(client, site):
    response = await client.options(CREATE, headers=preflight(OTHER_ORIGIN))

    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert cors_headers(response) == {}


@pytest.mark.parametrize("origin", [f"{ALLOWED_ORIGIN}.evil.example", ALLOWED_ORIGIN.upper(), "null", "*"])
async def test_origins_are_compared_exactly(client, origin):
    response = await client.options(CREATE, headers=preflight(origin))

    assert response.status == 403
    assert cors_headers(response) == {}


@pytest.mark.parametrize("extra", ["cookie", "x-api-key", "x-forwarded-for"])
async def test_a_preflight_asking_for_a_header_off_the_list_is_refused(client, extra):
    response = await client.options(CREATE, headers=preflight(ALLOWED_ORIGIN, headers=(*ALLOWED, extra)))

    assert response.status == 403
    assert cors_headers(response) == {}


@pytest.mark.parametrize("method", ["DELETE", "PUT", "GET"])
async def test_a_preflight_for_a_method_the_route_lacks_is_refused(client, method):
    response = await client.options(CREATE, headers=preflight(ALLOWED_ORIGIN, method=method))

    assert response.status == 403
    assert cors_headers(response) == {}


async def test_an_options_request_naming_no_method_is_no_preflight_and_is_refused(client):
    response = await client.options(CREATE, headers={"Origin": ALLOWED_ORIGIN})

    assert response.status == 403  # no Access-Control-Request-Method: not a preflight
    assert cors_headers(response) == {}


async def test_an_allowed_origins_get_exposes_the_tracing_and_retry_headers(client, site):
    response = await client.get(HISTORY, headers={**site.headers(), "Origin": ALLOWED_ORIGIN})

    assert response.status == 200
    headers = cors_headers(response)
    assert set(headers.pop("Access-Control-Expose-Headers").split(",")) == EXPOSED
    assert headers == {"Access-Control-Allow-Origin": ALLOWED_ORIGIN}  # and no Allow-Credentials


async def test_an_allowed_origins_create_is_answered_with_its_origin(client, site):
    headers = {**site.headers(key="k"), "Origin": SECOND_ORIGIN}

    response = await client.post(CREATE, json=a_body(), headers=headers)

    assert response.status == 201
    assert response.headers["Access-Control-Allow-Origin"] == SECOND_ORIGIN
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_an_allowed_origin_can_read_an_error_answer(client):
    response = await client.get(HISTORY, headers={"Origin": ALLOWED_ORIGIN})

    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


async def test_another_origins_request_is_answered_without_cors_headers(client, site):
    response = await client.get(HISTORY, headers={**site.headers(), "Origin": OTHER_ORIGIN})

    assert response.status == 200  # the server answers; the browser withholds it from the page
    assert cors_headers(response) == {}


async def test_every_route_that_takes_a_token_answers_preflights(client, site):
    checked = 0
    for resource in client.app.router.resources():
        template = resource.canonical
        methods = {route.method for route in resource} - {hdrs.METH_OPTIONS, hdrs.METH_HEAD}
        if not template.startswith("/api/v1/") or template.startswith("/api/v1/webhooks/"):
            continue
        if template == ALERTMANAGER_PATH:
            continue
        info = resource.get_info()
        # "41" fits every id segment of ours (webhook ids are digits only).
        path = re.sub(r"\{\w+\}", "41", info.get("formatter", info.get("path", "")))
        for method in methods:
            response = await client.options(path, headers=preflight(ALLOWED_ORIGIN, method=method))
            assert (response.status, response.headers.get("Access-Control-Allow-Origin")) == (
                200,
                ALLOWED_ORIGIN,
            ), f"{method} {template}"
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", PATH), ("POST", ALERTMANAGER_PATH), ("GET", "/admin"), ("GET", "/health"), ("GET", "/metrics")],
)
async def test_server_to_server_routes_and_the_admin_page_are_not_cors_enabled(client, method, path):
    refused = await client.options(path, headers=preflight(ALLOWED_ORIGIN, method=method))
    answered = await client.request(method, path, headers={"Origin": ALLOWED_ORIGIN})

    assert refused.status == 405  # no preflight route: nothing answers OPTIONS there
    assert cors_headers(refused) == {}
    assert cors_headers(answered) == {}


async def test_a_webhook_from_a_browser_origin_gets_no_cors_headers(client, site):
    response = await client.post(PATH, data=BODY, headers={**signed(), "Origin": ALLOWED_ORIGIN})

    assert response.status == 200
    assert cors_headers(response) == {}


async def test_without_allowed_origins_nothing_is_cors_enabled(aiohttp_client):
    site = Site(site_settings())
    client = await aiohttp_client(site.app())

    refused = await client.options(CREATE, headers=preflight(ALLOWED_ORIGIN))
    answered = await client.get(HISTORY, headers={**site.headers(), "Origin": ALLOWED_ORIGIN})

    assert refused.status == 401  # no preflight route: the API's token check answers first
    assert cors_headers(refused) == {}
    assert answered.status == 200
    assert cors_headers(answered) == {}
    assert not any(route.method == hdrs.METH_OPTIONS for route in client.app.router.routes())

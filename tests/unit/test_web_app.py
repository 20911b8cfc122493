from __future__ import annotations

import logging
import re

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient

from payments.domain.errors import (
    ConcurrentTransition,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    IllegalTransition,
    InvalidPayload,
    NotFound,
    PaymentsError,
    Reject,
    Retry,
    Unauthenticated,
    ValidationFailed,
)
from payments.pipeline.settings import AppSettings, Settings, WebSettings
from payments.pipeline.tracing import current_trace
from payments.web.keys import TRACE_KEY
from tests.unit._web_support import build_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

# The error a test route raises, keyed by a path segment.
ERRORS: dict[str, Exception] = {}


async def raise_error(request: web.Request) -> web.Response:
    raise ERRORS[request.match_info["name"]]


async def echo_trace(request: web.Request) -> web.Response:
    trace = current_trace()
    assert trace is not None
    return web.json_response({"requestId": trace.request_id, "stored": request[TRACE_KEY].request_id})


async def read_body(request: web.Request) -> web.Response:
    return web.json_response({"bytes": len(await request.read())})


async def item(request: web.Request) -> web.Response:
    return web.json_response({"item": request.match_info["item_id"]})


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/health")


def add_test_routes(app: web.Application) -> None:
    app.router.add_get("/test/errors/{name}", raise_error)
    app.router.add_get("/test/trace", echo_trace)
    app.router.add_post("/test/body", read_body)
    app.router.add_get("/test/items/{item_id}", item)
    app.router.add_get("/test/redirect", redirect)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient):
    settings = Settings(web=WebSettings(max_body_bytes=1024))
    return await aiohttp_client(build_app(settings=settings, routes=add_test_routes))


async def _raise(client, error: Exception):
    ERRORS["current"] = error
    return await client.get("/test/errors/current")


async def test_generated_trace_ids_are_echoed_in_response_headers(client):
    response = await client.get("/test/trace")

    body = await response.json()
    assert response.headers["X-Request-Id"] == body["requestId"] == body["stored"]
    assert response.headers["X-Correlation-Id"] == body["requestId"]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", response.headers["traceparent"])


async def test_a_valid_incoming_traceparent_keeps_its_trace_id_and_safe_ids_are_kept(client):
    headers = {"traceparent": INCOMING_TRACEPARENT, "X-Request-Id": "req-abc", "X-Correlation-Id": "corr-abc"}

    response = await client.get("/test/trace", headers=headers)

    assert response.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert response.headers["traceparent"] != INCOMING_TRACEPARENT
    assert (response.headers["X-Request-Id"], response.headers["X-Correlation-Id"]) == ("req-abc", "corr-abc")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        pytest.param(ValidationFailed("amount must be positive"), 400, "validation_failed", id="validation"),
        pytest.param(InvalidPayload("body is not JSON"), 400, "invalid_payload", id="invalid-payload"),
        pytest.param(Reject("poison"), 400, "rejected", id="reject"),
        pytest.param(Unauthenticated(), 401, "unauthenticated", id="unauthenticated"),
        pytest.param(Forbidden(), 403, "forbidden", id="forbidden"),
        pytest.param(NotFound("payment not found"), 404, "not_found", id="not-found"),
        pytest.param(Conflict("already refunded"), 409, "conflict", id="conflict"),
        pytest.param(ConcurrentTransition(), 409, "concurrent_change", id="concurrent-transition"),
        pytest.param(
            IllegalTransition("SUCCESS -> CREATED"), 409, "illegal_transition", id="illegal-transition"
        ),
        pytest.param(DependencyUnavailable(), 503, "dependency_unavailable", id="dependency-unavailable"),
        pytest.param(Retry(), 503, "temporarily_unavailable", id="retry"),
    ],
)
async def test_a_domain_error_maps_to_its_status_and_the_one_error_body(
    client, error: PaymentsError, status: int, code: str
):
    response = await _raise(client, error)

    assert response.status == status
    assert await response.json() == {
        "error": {"code": code, "message": error.message, "requestId": response.headers["X-Request-Id"]}
    }


async def test_a_retry_with_defer_answers_retry_after_in_whole_seconds(client):
    response = await _raise(client, DependencyUnavailable(defer=2.5))

    assert response.status == 503
    assert response.headers["Retry-After"] == "3"


async def test_a_retry_without_defer_has_no_retry_after(client):
    response = await _raise(client, DependencyUnavailable())

    assert "Retry-After" not in response.headers


async def test_a_transient_error_does_not_show_its_internal_message(client):
    response = await _raise(client, DependencyUnavailable("postgres at 10.0.0.5:5432 refused"))

    body = await response.json()
    assert body["error"]["message"] == "A service we depend on is unavailable."


async def test_a_client_error_message_is_masked(client):
    response = await _raise(client, ValidationFailed("bad email asha@example.in"))

    assert (await response.json())["error"]["message"] == "bad email a***@example.in"


async def test_an_unmapped_domain_error_is_a_generic_500(client):
    response = await _raise(client, PaymentsError("ledger invariant broken for p-1"))

    assert response.status == 500
    body = await response.json()
    assert body["error"] == {
        "code": "internal_error",
        "message": "Internal server error.",
        "requestId": response.headers["X-Request-Id"],
    }


async def test_an_unexpected_exception_is_logged_with_its_traceback_but_not_shown(
    client, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.ERROR, logger="payments.web.middlewares"):
        response = await _raise(client, KeyError("internal detail"))

    assert response.status == 500
    body = await response.json()
    assert body["error"]["code"] == "internal_error"
    assert "internal detail" not in await response.text()
    [record] = caplog.records
    assert record.exc_info is not None
    assert record.exc_info[0] is KeyError


async def test_an_unknown_route_answers_the_404_error_body(client):
    response = await client.get("/no/such/route")

    assert response.status == 404
    assert await response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "requestId": response.headers["X-Request-Id"]}
    }


async def test_a_wrong_method_answers_405_with_the_allowed_methods(client):
    response = await client.delete("/test/trace")

    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


async def test_a_body_over_the_size_limit_answers_the_413_error_body(client):
    response = await client.post("/test/body", data=b"x" * 2048)

    assert response.status == 413
    assert await response.json() == {
        "error": {
            "code": "payload_too_large",
            "message": "The request body is too large.",
            "requestId": response.headers["X-Request-Id"],
        }
    }


async def test_a_body_within_the_size_limit_is_read(client):
    response = await client.post("/test/body", data=b"x" * 512)

    assert await response.json() == {"bytes": 512}


async def test_a_redirect_passes_through_with_the_trace_headers(client):
    response = await client.get("/test/redirect", allow_redirects=False)

    assert response.status == 302
    assert response.headers["Location"] == "/health"
    assert "X-Request-Id" in response.headers


async def test_metrics_expose_request_latency_by_route_template(client):
    await client.get("/test/items/42")
    await client.get("/no/such/route")

    response = await client.get("/metrics")

    text = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    item_series = 'method="GET",route="/test/items/{item_id}",status="200"'
    assert f"payments_http_request_duration_seconds_count{{{item_series}}} 1.0" in text
    assert (
        'payments_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1.0'
        in text
    )
    assert "/test/items/42" not in text


async def test_metrics_record_the_mapped_status_of_a_failed_request(client):
    await _raise(client, Conflict())

    text = await (await client.get("/metrics")).text()

    assert 'route="/test/errors/{name}",status="409"' in text


async def test_the_metrics_route_is_absent_when_prometheus_is_disabled(aiohttp_client: AiohttpClient):
    settings = Settings(app=AppSettings(prometheus_enabled=False))
    client = await aiohttp_client(build_app(settings=settings))

    response = await client.get("/metrics")

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/health", "/no/such/route", "/test/errors/current"])
async def test_no_response_reveals_the_server_software(client, path: str):
    ERRORS["current"] = RuntimeError("boom")

    response = await client.get(path)

    server = response.headers.get("Server", "")
    assert "aiohttp" not in server.lower()
    assert "python" not in server.lower()


def test_the_access_log_line_carries_the_request_ids_and_no_query_string(caplog):
    from aiohttp.test_utils import make_mocked_request

    from payments.web.access_log import AccessLogger

    request = make_mocked_request("GET", "/health?email=someone@example.com")
    response = web.Response(
        headers={
            "X-Request-Id": "req-42",
            "X-Correlation-Id": "corr-7",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }
    )
    access = AccessLogger(logging.getLogger("aiohttp.access"), "")
    with caplog.at_level("INFO", logger="aiohttp.access"):
        access.log(request, response, 0.0123)

    [line] = caplog.records
    assert line.requestId == "req-42"
    assert line.correlationId == "corr-7"
    assert line.traceId == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert (line.path, line.status, line.durationSeconds) == ("/health", 200, 0.0123)
    assert "someone@example.com" not in line.getMessage()

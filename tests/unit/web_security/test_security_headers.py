"""Every answer carries the security headers, whoever wrote it: handlers, the error mapping, aiohttp's
own 404 and 405, the size limit, health, metrics, the webhook intake, the admin page and the stream."""

from __future__ import annotations

import pytest
from aiohttp import web

from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.domain.invoice.document import Issuer
from payments.domain.invoice.service import issue_invoice
from payments.web.auth import ALERTMANAGER_PATH
from tests.unit._web_support import build_app
from tests.unit.web_admin_alerts._alerts import EventReader
from tests.unit.web_payments._api import NOW, a_body, create, verify
from tests.unit.web_refunds._api import a_paid_payment
from tests.unit.web_security._site import (
    ADMIN_PAGE_CSP,
    BODY_LIMIT,
    EXPECTED_HEADERS,
    security_headers_of,
)
from tests.unit.web_webhooks._ingest import BODY, PATH, signed

STREAM = "/api/v1/admin/alerts/stream"
ISSUER = Issuer(
    name="CommDesk", address="Bengaluru", support_email="support@commdesk.example", support_phone="+91 80"
)


def assert_secured(response, **route_own: str) -> None:
    """The full header set, exactly; ``route_own`` names the values a route set for itself."""
    expected = {**EXPECTED_HEADERS, **{name.replace("_", "-"): value for name, value in route_own.items()}}
    assert security_headers_of(response.headers) == expected


async def test_a_200_json_answer_is_secured(client, site):
    _, created = await create(client, site, "k-200")
    read = await client.get(f"/api/v1/payments/{created['paymentId']}", headers=site.headers())

    assert read.status == 200
    assert read.content_type == "application/json"
    assert_secured(read)


async def test_a_201_create_is_secured(client, site):
    response, _ = await create(client, site, "k-201")

    assert response.status == 201
    assert_secured(response)


async def test_a_400_refusal_is_secured(client, site):
    response, body = await create(client, site, "k-400", a_body(amount="-1"))

    assert (response.status, body["error"]["code"]) == (400, "amount_invalid")
    assert_secured(response)


async def test_a_401_without_a_token_is_secured(client):
    response = await client.get("/api/v1/payments/history")

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_secured(response)


async def test_a_403_for_another_users_history_is_secured(client, site):
    response = await client.get("/api/v1/payments/history?userId=user-2", headers=site.headers())

    assert response.status == 403
    assert_secured(response)


@pytest.mark.parametrize("path", ["/no/such/page", "/api/v1/payments/a/b/c"])
async def test_a_404_for_an_unknown_path_is_secured(client, site, path):
    response = await client.get(path, headers=site.headers())

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
    assert_secured(response)


@pytest.mark.parametrize(("method", "path"), [("POST", "/health"), ("DELETE", "/api/v1/payments/create")])
async def test_a_405_for_a_method_the_route_lacks_is_secured(client, site, method, path):
    response = await client.request(method, path, headers=site.headers())

    assert response.status == 405
    assert "Allow" in response.headers
    assert_secured(response)


async def test_a_413_for_a_body_over_the_limit_is_secured(client, site):
    data = b"{" + b" " * BODY_LIMIT + b"}"
    headers = {**site.headers(key="big"), "Content-Type": "application/json"}
    response = await client.post("/api/v1/payments/create", data=data, headers=headers)

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert_secured(response)


@pytest.mark.parametrize("path", ["/health", "/health/database", "/metrics"])
async def test_health_and_metrics_are_secured(client, path):
    response = await client.get(path)

    assert response.status == 200
    assert_secured(response)


async def test_the_webhook_intakes_answers_are_secured(client, site):
    accepted = await client.post(PATH, data=BODY, headers=signed())
    refused = await client.post(PATH, data=BODY, headers=signed(secret="not-the-secret"))

    assert (accepted.status, refused.status) == (200, 401)
    assert_secured(accepted)
    assert_secured(refused)


async def test_the_alertmanager_intakes_refusal_is_secured(client):
    response = await client.post(ALERTMANAGER_PATH, json={"version": "4", "alerts": []})

    assert response.status == 401
    assert_secured(response)


async def test_the_admin_page_keeps_its_own_policy_and_caching(client):
    response = await client.get("/admin")

    assert response.status == 200
    assert_secured(response, Content_Security_Policy=ADMIN_PAGE_CSP, Cache_Control="no-cache")


@pytest.mark.parametrize("path", ["/admin/app.js", "/admin/app.css", "/admin/favicon.svg"])
async def test_the_admin_pages_assets_are_secured_under_its_policy(client, path):
    response = await client.get(path)

    assert response.status == 200
    assert_secured(response, Content_Security_Policy=ADMIN_PAGE_CSP, Cache_Control="no-cache")


async def test_the_invoice_keeps_its_private_no_store(client, site):
    paid = await a_paid_payment(client, site)
    async with site.store.unit_of_work() as uow:
        invoice = await issue_invoice(
            uow, paid["paymentId"], renderer=InvoicePdf(), prefix="INV", issuer=ISSUER, now=NOW
        )
    assert invoice is not None

    response = await client.get(f"/api/v1/payments/{paid['paymentId']}/invoice", headers=site.headers())

    assert (response.status, response.content_type) == (200, "application/pdf")
    assert_secured(response, Cache_Control="private, no-store")


async def test_the_alert_streams_first_bytes_come_with_the_headers(client, site):
    response = await client.get(STREAM, headers=site.headers("admin-1", admin=True))

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert_secured(response)
    first = await EventReader(response).frame()
    assert first is not None
    assert first.fields("retry") == ["3000"]
    response.close()


async def test_a_verify_replayed_from_the_idempotency_store_is_secured_too(client, site):
    _, created = await create(client, site, "k-replayed")
    first, _ = await verify(client, site, "v-1", {"paymentId": created["paymentId"]})
    again, _ = await verify(client, site, "v-1", {"paymentId": created["paymentId"]})

    assert (first.status, again.status) == (200, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_secured(again)


async def test_a_crash_a_redirect_and_a_raw_stream_are_secured(aiohttp_client):
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/health")

    async def raw(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"chunk")
        return response

    def routes(app: web.Application) -> None:
        app.router.add_get("/crash", crash)
        app.router.add_get("/moved", moved)
        app.router.add_get("/raw", raw)

    client = await aiohttp_client(build_app(routes=routes))

    crashed = await client.get("/crash")
    redirected = await client.get("/moved", allow_redirects=False)
    streamed = await client.get("/raw")

    assert (crashed.status, redirected.status, streamed.status) == (500, 302, 200)
    for response in (crashed, redirected, streamed):
        assert_secured(response)
    assert await streamed.read() == b"chunk"

"""Bodies just over the size limit and JSON nested ten thousand deep are refused with a 4xx before
anything is parsed, sent or stored, and the app answers the next request as usual."""

from __future__ import annotations

from typing import Any

import pytest

from payments.pipeline.settings import SecuritySettings
from payments.web.auth import ALERTMANAGER_PATH
from payments.web.payment_requests import MAX_JSON_DEPTH
from tests.unit.web_payments._api import a_body
from tests.unit.web_refunds._api import a_paid_payment, a_refund
from tests.unit.web_security._site import BODY_LIMIT, DEAD_LETTER_QUEUE, Site, site_settings
from tests.unit.web_webhooks._ingest import BODY, PATH, signed, signed_2023

DEPTH = 10_000
WEBHOOK_LIMIT = 65_536  # CashfreeSettings' default webhook_max_body_bytes
WRITES = ["/api/v1/payments/create", "/api/v1/payments/verify", "/api/v1/refunds/initiate"]


def just_over(limit: int) -> bytes:
    """A well-formed JSON object of exactly ``limit + 1`` bytes."""
    head, tail = b'{"description": "', b'"}'
    return head + b"a" * (limit + 1 - len(head) - len(tail)) + tail


def nested_arrays(depth: int = DEPTH) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_in_metadata(depth: int = DEPTH) -> bytes:
    """A create body whose metadata nests objects ``depth`` deep: valid JSON, hostile shape."""
    head = b'{"amount": "10.00", "currency": "INR", "metadata": '
    return head + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


def state(site: Site) -> tuple[Any, ...]:
    """Everything a request could have stored or sent."""
    return (
        dict(site.payments()),
        dict(site.refunds()),
        len(site.bus.sent),
        len(site.idempotency),
        len(site.publisher.published),
    )


async def a_paid_payment_id(client, site: Site) -> str:
    return (await a_paid_payment(client, site, key="setup"))["paymentId"]


def a_valid_body(path: str, payment_id: str) -> dict[str, Any]:
    if path.endswith("create"):
        return a_body()
    if path.endswith("verify"):
        return {"paymentId": payment_id}
    return a_refund(payment_id)


async def post_raw(client, site: Site, path: str, data: bytes, key: str):
    headers = {**site.headers(key=key), "Content-Type": "application/json"}
    response = await client.post(path, data=data, headers=headers)
    return response, await response.json()


async def assert_answers_normally(client, site: Site, path: str, payment_id: str) -> None:
    response = await client.post(path, json=a_valid_body(path, payment_id), headers=site.headers(key="after"))
    assert response.status in (200, 201), await response.text()


@pytest.mark.parametrize("path", WRITES)
async def test_a_body_one_byte_over_the_limit_is_refused_with_413(client, site, path):
    payment_id = await a_paid_payment_id(client, site)
    before = state(site)

    response, body = await post_raw(client, site, path, just_over(BODY_LIMIT), "big")

    assert response.status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["requestId"] == response.headers["X-Request-Id"]
    assert state(site) == before
    await assert_answers_normally(client, site, path, payment_id)


async def test_a_body_exactly_at_the_limit_is_read_and_judged_on_its_content(client, site):
    response, body = await post_raw(client, site, WRITES[0], just_over(BODY_LIMIT - 1), "at-limit")

    assert response.status == 400
    assert body["error"]["code"] != "payload_too_large"
    assert site.nothing_stored()


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize("data", [nested_arrays(), nested_in_metadata()], ids=["arrays", "metadata"])
async def test_json_nested_ten_thousand_deep_is_refused_as_malformed(aiohttp_client, path, data):
    # A body limit large enough for the nesting, so the depth is what refuses it.
    site = Site(site_settings(body_limit=len(data) * 2))
    client = await aiohttp_client(site.app())
    payment_id = await a_paid_payment_id(client, site)
    before = state(site)

    response, body = await post_raw(client, site, path, data, "deep")

    assert response.status == 400
    assert body["error"]["code"] == "malformed_json"
    assert body["error"]["message"] == f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
    assert state(site) == before
    await assert_answers_normally(client, site, path, payment_id)


async def test_nesting_at_the_bound_is_parsed_and_judged_on_its_content(client, site):
    response, body = await post_raw(client, site, WRITES[0], nested_in_metadata(MAX_JSON_DEPTH - 1), "ok")

    assert response.status == 400
    assert body["error"]["code"] == "validation_failed"  # customer is missing; the JSON itself was fine
    assert site.nothing_stored()


async def test_a_webhook_one_byte_over_its_limit_is_refused_with_413(client, site):
    data = just_over(WEBHOOK_LIMIT)

    response = await client.post(PATH, data=data, headers=signed_2023(data))

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert site.nothing_stored()
    assert (await client.post(PATH, data=BODY, headers=signed())).status == 200


@pytest.mark.parametrize("genuinely_signed", [False, True], ids=["unsigned", "signed"])
async def test_a_webhook_nested_ten_thousand_deep_is_refused(client, site, genuinely_signed):
    data = nested_arrays()
    headers = signed_2023(data) if genuinely_signed else signed_2023(data, secret="guessed-secret")

    response = await client.post(PATH, data=data, headers=headers)

    # The signature is checked over the raw bytes first: a forger never reaches the parser.
    assert response.status == (400 if genuinely_signed else 401)
    assert response.status < 500
    assert site.nothing_stored()
    assert (await client.post(PATH, data=BODY, headers=signed())).status == 200


ADMIN_WRITES = [f"/api/v1/admin/dlq/{DEAD_LETTER_QUEUE}/redrive", "/api/v1/admin/reconciliation/runs"]


@pytest.mark.parametrize("path", ADMIN_WRITES)
async def test_an_admin_write_one_byte_over_the_limit_is_refused_with_413(client, site, path):
    headers = {**site.headers("admin-1", admin=True), "Content-Type": "application/json"}

    response = await client.post(path, data=just_over(BODY_LIMIT), headers=headers)

    assert response.status == 413
    assert (await response.json())["error"]["code"] == "payload_too_large"
    assert site.store.audit_rows == []


@pytest.mark.parametrize("path", ADMIN_WRITES)
async def test_an_admin_write_nested_ten_thousand_deep_is_refused_as_malformed(aiohttp_client, path):
    data = nested_arrays()
    site = Site(site_settings(body_limit=len(data) * 2))
    client = await aiohttp_client(site.app())
    headers = {**site.headers("admin-1", admin=True), "Content-Type": "application/json"}

    response = await client.post(path, data=data, headers=headers)

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"
    assert site.store.audit_rows == []


async def test_an_alertmanager_notification_nested_ten_thousand_deep_is_refused(aiohttp_client):
    token = "alertmanager-token-0123456789abcdef0123456789"
    data = b'{"version": "4", "alerts": ' + nested_arrays() + b"}"
    settings = site_settings(body_limit=len(data) * 2).model_copy(
        update={"security": SecuritySettings(alertmanager_token=token)}
    )
    site = Site(settings)
    client = await aiohttp_client(site.app())

    response = await client.post(ALERTMANAGER_PATH, data=data, headers={"Authorization": f"Bearer {token}"})

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"
    assert site.store.alert_tables.alerts == {}

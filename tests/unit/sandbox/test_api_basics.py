"""Authentication, versions, error bodies and the headers every PG answer carries."""

from __future__ import annotations

import pytest

from tests.unit.sandbox.support import APP_ID, CREDENTIALS, SECRET, Pg

EVERY_ANSWER_HEADER = (
    "x-api-version",
    "x-request-id",
    "x-idempotency-replayed",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-retry",
    "x-ratelimit-type",
)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-client-id": APP_ID, "x-client-secret": "wrong", "x-api-version": "2025-01-01"},
        {"x-client-id": "someone-else", "x-client-secret": SECRET, "x-api-version": "2025-01-01"},
        {"x-api-version": "2025-01-01"},
    ],
    ids=["wrong secret", "wrong app id", "no credentials"],
)
async def test_wrong_or_missing_credentials_answer_401_authentication_error(pg: Pg, headers):
    response = await pg.client.get("/pg/orders/anything", headers=headers)

    assert response.status == 401
    assert await response.json() == {
        "message": "authentication Failed",
        "code": "request_failed",
        "type": "authentication_error",
    }


async def test_a_missing_api_version_answers_400_version_missing(pg: Pg):
    headers = {key: value for key, value in CREDENTIALS.items() if key != "x-api-version"}

    response = await pg.client.get("/pg/orders/anything", headers=headers)

    assert response.status == 400
    assert (await response.json())["code"] == "version_missing"
    assert (await response.json())["type"] == "invalid_request_error"


async def test_an_unsupported_api_version_answers_400_version_invalid(pg: Pg):
    response = await pg.client.get(
        "/pg/orders/anything", headers={**CREDENTIALS, "x-api-version": "2022-09-01"}
    )

    assert response.status == 400
    assert (await response.json())["code"] == "version_invalid"


@pytest.mark.parametrize("version", ["2023-08-01", "2025-01-01", "2026-01-01"])
async def test_each_supported_version_is_accepted_and_echoed(pg: Pg, version):
    order = await pg.create_order()

    response = await pg.client.get(
        f"/pg/orders/{order['order_id']}", headers={**CREDENTIALS, "x-api-version": version}
    )

    assert response.status == 200
    assert response.headers["x-api-version"] == version


async def test_every_answer_carries_the_cashfree_headers_and_echoes_the_request_id(pg: Pg):
    ok = await pg.client.post("/pg/orders", json={}, headers={**CREDENTIALS, "x-request-id": "req-42"})
    refused = await pg.client.get(
        "/pg/orders/x", headers={"x-request-id": "req-43", "x-api-version": "2025-01-01"}
    )

    for response, request_id in ((ok, "req-42"), (refused, "req-43")):
        assert all(name in response.headers for name in EVERY_ANSWER_HEADER), response.headers
        assert response.headers["x-request-id"] == request_id
        assert response.headers["x-idempotency-replayed"] == "false"
        assert response.headers["x-ratelimit-type"] == "app_id"


async def test_an_unknown_order_answers_404_order_not_found(pg: Pg):
    response = await pg.client.get("/pg/orders/no-such-order", headers=CREDENTIALS)

    assert response.status == 404
    assert await response.json() == {
        "message": "order 'no-such-order' does not exist",
        "code": "order_not_found",
        "type": "invalid_request_error",
    }


async def test_an_unknown_pg_path_answers_400_request_failed_with_the_headers(pg: Pg):
    response = await pg.client.get("/pg/no/such/route", headers=CREDENTIALS)

    assert response.status == 400
    assert (await response.json())["code"] == "request_failed"
    assert response.headers["x-ratelimit-limit"] == "60"


async def test_a_body_that_is_not_a_json_object_answers_400(pg: Pg):
    response = await pg.client.post("/pg/orders", data=b"[1, 2", headers=CREDENTIALS)

    assert response.status == 400
    assert (await response.json())["code"] == "request_invalid"

"""Every admin route is for administrators only."""

from __future__ import annotations

import pytest

from tests.unit.web_admin._admin import USER, WEBHOOKS

ROUTES = [
    ("GET", "/api/v1/admin/dlq", None),
    ("GET", f"/api/v1/admin/dlq/{WEBHOOKS}", None),
    ("POST", f"/api/v1/admin/dlq/{WEBHOOKS}/redrive", {"all": True}),
    ("POST", "/api/v1/admin/webhooks/41/reprocess", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_request_without_a_token_is_refused(client, world, method, path, body):
    world.dead("m1")

    response = await client.request(method, path, json=body)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthenticated"
    assert await world.dead_letters.count(WEBHOOKS) == 1
    assert world.webhooks.calls == []


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_user_who_is_not_an_admin_is_forbidden_and_nothing_happens(client, world, method, path, body):
    world.dead("m1")

    response = await client.request(method, path, json=body, headers=world.headers(USER, admin=False))

    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "forbidden"
    assert error["requestId"] == response.headers["X-Request-Id"]
    assert await world.dead_letters.count(WEBHOOKS) == 1
    assert world.dead_letters.redrive_calls == []
    assert world.webhooks.calls == []
    assert world.audit() == []

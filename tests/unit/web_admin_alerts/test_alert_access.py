"""The alert list and stream are for administrators only; the page itself holds no data."""

from __future__ import annotations

import pytest

from tests.unit.web_admin_alerts._alerts import LIST, STREAM, USER, alert

ROUTES = [LIST, STREAM]


@pytest.mark.parametrize("path", ROUTES)
async def test_a_request_without_a_token_is_refused(client, world, path):
    await world.stored(alert("method:upi"))

    response = await client.get(path)

    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"]["code"] == "unauthenticated"
    assert world.feed.subscribers == 0


@pytest.mark.parametrize("path", ROUTES)
async def test_a_user_who_is_not_an_admin_is_forbidden(client, world, path):
    await world.stored(alert("method:upi"))

    response = await client.get(path, headers=world.headers(USER, admin=False))

    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "forbidden"
    assert error["requestId"] == response.headers["X-Request-Id"]
    assert world.feed.subscribers == 0


async def test_a_token_in_the_query_string_is_not_accepted(client, world):
    token = world.headers()["Authorization"].removeprefix("Bearer ")

    response = await client.get(STREAM, params={"token": token})

    assert response.status == 401

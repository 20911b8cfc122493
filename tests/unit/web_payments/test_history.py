"""GET /api/v1/payments/history: newest first, cursor pages, filters, and whose payments."""

from __future__ import annotations

import base64

import pytest

from payments.domain.gateway import AttemptStatus
from tests.unit.web_payments._api import ADMIN, OWNER, STRANGER, create, verify


async def make_payments(client, world, count: int, *, user: str = OWNER, prefix: str = "h") -> list[str]:
    """``count`` payments one minute apart, oldest first; their ids."""
    ids = []
    for n in range(count):
        response, body = await create(client, world, f"{prefix}-{n}", user=user)
        assert response.status == 201
        ids.append(body["paymentId"])
        world.tick()
    return ids


async def history(client, world, *, user: str = OWNER, admin: bool = False, **params: str):
    response = await client.get(
        "/api/v1/payments/history", params=params, headers=world.headers(user, admin=admin)
    )
    return response, await response.json()


async def test_pages_follow_each_other_newest_first_until_no_cursor_is_left(client, world):
    mine = await make_payments(client, world, 5)
    await make_payments(client, world, 2, user=STRANGER, prefix="s")

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response, body = await history(client, world, **params)
        assert response.status == 200
        seen += [p["paymentId"] for p in body["payments"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert seen == list(reversed(mine))
    assert pages == 3


async def test_the_default_page_holds_twenty(client, world):
    await make_payments(client, world, 21)

    _, body = await history(client, world)

    assert len(body["payments"]) == 20
    assert body["nextCursor"] is not None


async def test_the_status_filter_keeps_only_payments_in_that_state(client, world):
    ids = await make_payments(client, world, 3)
    order_id = world.payments()[ids[1]].order_id
    world.gateway.attempt(order_id, AttemptStatus.SUCCESS)
    await verify(client, world, "v-1", {"paymentId": ids[1]})

    _, succeeded = await history(client, world, status="SUCCESS")
    _, pending = await history(client, world, status="PENDING")

    assert [p["paymentId"] for p in succeeded["payments"]] == [ids[1]]
    assert [p["paymentId"] for p in pending["payments"]] == [ids[2], ids[0]]


async def test_from_and_to_filter_by_creation_time(client, world):
    ids = await make_payments(client, world, 4)  # created 10:00, 10:01, 10:02, 10:03 on 2026-11-26

    _, middle = await history(
        client, world, **{"from": "2026-11-26T10:01:00Z", "to": "2026-11-26T10:03:00+00:00"}
    )
    _, that_day = await history(client, world, **{"from": "2026-11-26", "to": "2026-11-26"})
    _, next_day = await history(client, world, **{"from": "2026-11-27"})

    assert [p["paymentId"] for p in middle["payments"]] == [ids[2], ids[1]]
    assert len(that_day["payments"]) == 4
    assert next_day["payments"] == []


async def test_an_admin_sees_everyones_payments_or_one_users(client, world):
    mine = await make_payments(client, world, 2)
    theirs = await make_payments(client, world, 1, user=STRANGER, prefix="s")

    _, everyone = await history(client, world, user=ADMIN, admin=True)
    _, one_user = await history(client, world, user=ADMIN, admin=True, userId=STRANGER)

    assert {p["paymentId"] for p in everyone["payments"]} == set(mine + theirs)
    assert [p["paymentId"] for p in one_user["payments"]] == theirs


async def test_a_user_may_name_themselves_but_not_another_user(client, world):
    await make_payments(client, world, 1)

    own, own_body = await history(client, world, userId=OWNER)
    other, other_body = await history(client, world, userId=STRANGER)

    assert own.status == 200
    assert len(own_body["payments"]) == 1
    assert other.status == 403
    assert other_body["error"]["code"] == "forbidden"


def forged_cursor() -> str:
    return base64.urlsafe_b64encode(b"yesterday|pay_1").decode()


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"limit": "²"},
        {"status": "PAID"},
        {"from": "last tuesday"},
        {"from": "2026-11-27", "to": "2026-11-26"},
        {"cursor": "!!!"},
        {"cursor": forged_cursor()},
        {"sort": "asc"},
        {"userId": "bad user"},
        {"to": "9999-12-31"},
        {"from": "0001-01-01T00:00:00+05:00"},
        {"to": "9999-12-31T23:59:59-05:00"},
        {"cursor": base64.urlsafe_b64encode(b"0001-01-01T00:00:00+05:00|pay_1").decode().rstrip("=")},
    ],
    ids=[
        "limit-zero",
        "limit-too-big",
        "limit-word",
        "limit-superscript",
        "status",
        "from",
        "from-after-to",
        "cursor-garbage",
        "cursor-forged",
        "unknown",
        "user-id",
        "to-after-9999",
        "from-before-year-1-in-utc",
        "to-after-9999-in-utc",
        "cursor-before-year-1-in-utc",
    ],
)
async def test_bad_history_parameters_are_refused(client, world, params):
    response, body = await history(client, world, user=ADMIN, admin=True, **params)

    assert response.status == 400
    assert body["error"]["code"] == "validation_failed"


async def test_a_parameter_given_twice_is_refused(client, world):
    response = await client.get("/api/v1/payments/history?limit=1&limit=2", headers=world.headers())

    assert response.status == 400

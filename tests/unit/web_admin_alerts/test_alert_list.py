"""``GET /api/v1/admin/alerts``: the stored alerts, newest first."""

from __future__ import annotations

import pytest

from tests.unit.web_admin_alerts._alerts import LIST, alert


async def test_the_list_shows_the_newest_alerts_first_with_their_sequence(client, world):
    first, second, third = alert("method:upi"), alert("method:card", minutes=1), alert("ip:1", minutes=2)
    await world.stored(first, second, third)

    response = await client.get(LIST, params={"limit": "2"}, headers=world.headers())

    assert response.status == 200
    body = await response.json()
    assert body == {
        "alerts": [
            {**third.message(), "sequence": 3},
            {**second.message(), "sequence": 2},
        ]
    }


async def test_the_list_holds_fifty_alerts_unless_told_otherwise(client, world):
    await world.stored(*(alert(f"method:m{n}", minutes=n) for n in range(55)))

    response = await client.get(LIST, headers=world.headers())

    alerts = (await response.json())["alerts"]
    assert len(alerts) == 50
    assert alerts[0]["subject"] == "method:m54"


async def test_an_empty_table_gives_an_empty_list(client, world):
    response = await client.get(LIST, headers=world.headers())

    assert response.status == 200
    assert await response.json() == {"alerts": []}


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1"])
async def test_a_bad_limit_is_refused(client, world, limit):
    response = await client.get(LIST, params={"limit": limit}, headers=world.headers())

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "limit_invalid"

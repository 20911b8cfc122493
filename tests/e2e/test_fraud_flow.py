"""A burst of payments from one address, through the whole product: the velocity rule stops it while
it happens, the evidence is stored, and admins see one alert live."""

from __future__ import annotations

import asyncio
import json
import random
import uuid

import pytest

from tests.waiting import eventually

#: At most three payments a minute from one address.
LIMIT = 3
RULES = {"velocity": [{"name": "ip_burst", "subject": "ip", "window_seconds": 60, "limit": LIMIT}]}


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "FRAUD_RULES": json.dumps(RULES)}


def a_fresh_address() -> str:
    # Redis keeps windows between runs of the suite: each run bursts from an address of its own.
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


async def alert_events(stack, stream_ready: asyncio.Event, seen: list[dict]) -> None:
    """Follow the admin alert stream, collecting every alert it sends."""
    headers = {"Authorization": f"Bearer {stack.token('admin-e2e', admin=True)}"}
    async with stack.api.get("/api/v1/admin/alerts/stream", headers=headers) as response:
        assert response.status == 200
        stream_ready.set()
        event: str | None = None
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "alert":
                seen.append(json.loads(line.removeprefix("data: ")))


async def test_a_burst_from_one_address_is_stopped_mid_way_and_admins_are_alerted_once(stack):
    address, run = a_fresh_address(), uuid.uuid4().hex[:8]
    ready, alerts = asyncio.Event(), []
    follower = asyncio.create_task(alert_events(stack, ready, alerts))
    await asyncio.wait_for(ready.wait(), timeout=30)

    statuses, bodies = [], []
    for n in range(LIMIT + 3):
        # Different users and customers: only the address ties the burst together.
        response = await stack.create(
            f"user-burst-{run}-{n}", client_ip=address, email=f"c{n}-{run}@example.com"
        )
        statuses.append(response.status)
        bodies.append(await response.json())

    assert statuses == [201] * LIMIT + [403] * 3
    assert {body["error"]["code"] for body in bodies[LIMIT:]} == {"payment_blocked"}
    assert "ip_burst" in bodies[LIMIT]["error"]["message"]

    users = [f"user-burst-{run}-{n}" for n in range(LIMIT + 3)]
    payments = await stack.rows(
        "SELECT user_id, status, failure_reason, client_ip FROM payments WHERE user_id = ANY($1)", users
    )
    by_user = {row["user_id"]: row for row in payments}
    assert [by_user[user]["status"] for user in users] == ["PENDING"] * LIMIT + ["CANCELLED"] * 3
    assert {by_user[user]["failure_reason"] for user in users[LIMIT:]} == {"blocked by fraud screening"}
    assert {str(by_user[user]["client_ip"]) for user in users} == {address}

    signals = await stack.rows(
        "SELECT rule, verdict, observed, threshold FROM fraud_signals"
        " WHERE user_id = ANY($1) ORDER BY observed",
        users,
    )
    assert [(s["rule"], s["verdict"], s["observed"], s["threshold"]) for s in signals] == [
        ("ip_burst", "block", LIMIT + 1, LIMIT),
        ("ip_burst", "block", LIMIT + 2, LIMIT),
        ("ip_burst", "block", LIMIT + 3, LIMIT),
    ]
    stored_alerts = await stack.rows("SELECT kind, title FROM alerts WHERE subject = $1", f"ip:{address}")
    assert [row["kind"] for row in stored_alerts] == ["fraud_block"]

    await eventually(
        lambda: any(alert["subject"] == f"ip:{address}" for alert in alerts),
        timeout=30,
        what="the fraud alert on the admin stream",
    )
    follower.cancel()
    mine = [alert for alert in alerts if alert["subject"] == f"ip:{address}"]
    assert [(alert["kind"], alert["severity"]) for alert in mine] == [("fraud_block", "critical")]

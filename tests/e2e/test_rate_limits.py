"""Rate limits through the assembled product: counted in the run's Redis, answered 429 with Retry-After.

Windows outlive a test (a minute in Redis), so every test uses users and client addresses of its own.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid

import pytest

WRITES_PER_MINUTE = 3
REQUESTS_PER_ADDRESS = 10
#: Addresses for the tests' clients (RFC 2544 benchmarking space), named with X-Forwarded-For.
NETWORK = ipaddress.ip_network("198.18.0.0/15")


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {
        **environ,
        "RATE_LIMITS_ENABLED": "true",
        "RATE_LIMIT_WRITES": f"{WRITES_PER_MINUTE}/minute",
        "RATE_LIMIT_PER_USER": "100/minute",
        "RATE_LIMIT_PER_IP": f"{REQUESTS_PER_ADDRESS}/minute",
    }


def new_user() -> str:
    return f"user-limits-{uuid.uuid4().hex[:12]}"


def new_address() -> str:
    return str(NETWORK[secrets.randbelow(NETWORK.num_addresses - 2) + 1])


async def test_a_users_fourth_payment_in_a_minute_is_refused_and_others_carry_on(stack):
    user, other = new_user(), new_user()

    created = [await stack.create(user, client_ip=new_address()) for _ in range(WRITES_PER_MINUTE)]
    refused = await stack.create(user, client_ip=new_address())

    assert [response.status for response in created] == [201] * WRITES_PER_MINUTE
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    body = await refused.json()
    assert body == {
        "error": {
            "code": "rate_limited",
            "message": "Too many requests.",
            "requestId": refused.headers["X-Request-Id"],
        }
    }
    stored = await stack.rows("SELECT count(*) AS n FROM payments WHERE user_id = $1", user)
    assert stored[0]["n"] == WRITES_PER_MINUTE

    another = await stack.create(other, client_ip=new_address())
    assert another.status == 201, await another.text()
    payment_id = (await created[0].json())["paymentId"]
    read = await stack.api.get(f"/api/v1/payments/{payment_id}", headers=stack.headers(user))
    assert read.status == 200, await read.text()


async def test_an_address_is_limited_before_its_tokens_are_checked(stack):
    guessing = {"Authorization": "Bearer guessed", "X-Forwarded-For": new_address()}

    answers = [
        (await stack.api.get("/api/v1/payments/history", headers=guessing)).status
        for _ in range(REQUESTS_PER_ADDRESS + 1)
    ]

    assert answers == [401] * REQUESTS_PER_ADDRESS + [429]
    elsewhere = await stack.api.get(
        "/api/v1/payments/history", headers={**stack.headers(new_user()), "X-Forwarded-For": new_address()}
    )
    assert elsewhere.status == 200, await elsewhere.text()

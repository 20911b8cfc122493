"""``payments token`` mints a token the API accepts, and prints nothing else."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from payments.pipeline.settings import SecuritySettings, Settings
from payments.web.auth import principal_from_token
from tests.unit.web_payments._api import World

SECRET = "a-secret-only-this-test-knows-0123456789"


async def payments_token(*arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payments",
        "token",
        *arguments,
        env={**os.environ, "JWT_SECRET": SECRET, "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def settings() -> Settings:
    return Settings(security=SecuritySettings(jwt_secret=SECRET))


async def test_the_token_command_mints_a_token_the_api_accepts(client, world: World):
    code, out, err = await payments_token("--user", "cli-user-1")
    response = await client.get(
        "/api/v1/payments/history", headers={"Authorization": f"Bearer {out.strip()}"}
    )

    assert (code, err) == (0, "")
    assert len(out.splitlines()) == 1
    assert response.status == 200


async def test_an_admin_token_from_the_command_carries_the_admin_role(world: World):
    code, out, _ = await payments_token("--user", "ops-1", "--admin", "--ttl", "120")

    principal = principal_from_token(world.settings.security, out.strip())

    assert code == 0
    assert (principal.user_id, principal.is_admin) == ("ops-1", True)


@pytest.mark.parametrize(
    "arguments", [("--user", "has space"), ("--user", "u-1", "--ttl", "0")], ids=["bad-user", "zero-ttl"]
)
async def test_the_command_refuses_what_it_cannot_mint_and_prints_no_token(arguments):
    code, out, err = await payments_token(*arguments)

    assert code == 2
    assert out == ""
    assert err.startswith("payments: ")

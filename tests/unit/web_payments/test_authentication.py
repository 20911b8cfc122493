"""Bearer tokens on /api/v1/: who may call, and how a refusal looks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from payments.pipeline.settings import SecuritySettings
from payments.web.auth import mint_token, principal_from_token, require_admin
from tests.unit.web_payments._api import OWNER

HISTORY = "/api/v1/payments/history"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def handmade_token(claims: dict, *, secret: str, alg: str = "HS256") -> str:
    """A JWT signed by hand, so tests can make the tokens no library would mint for us."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    digests = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}
    signature = b64(hmac.new(secret.encode(), signing_input, digests[alg]).digest()) if alg in digests else ""
    return f"{header}.{payload}.{signature}"


def good_claims(security: SecuritySettings, **overrides) -> dict:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": OWNER,
        "role": "user",
        "iss": security.jwt_issuer,
        "aud": security.jwt_audience,
        "iat": now,
        "exp": now + 600,
    }
    return {k: v for k, v in (claims | overrides).items() if v is not None}


def secret_of(security: SecuritySettings) -> str:
    return security.jwt_secret.get_secret_value()


async def get_history(client, authorization: str | None):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get(HISTORY, headers=headers)
    return response, await response.json()


def assert_refused(response, body, token: str | None = None) -> None:
    assert response.status == 401
    assert body["error"]["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if token:
        assert token not in json.dumps(body)


async def test_a_request_without_a_token_is_refused_with_a_bearer_challenge(client):
    response, body = await get_history(client, None)

    assert_refused(response, body)
    assert body["error"]["requestId"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "header", ["Token abc.def.ghi", "Bearer", "Bearer  ", "Bearer a b", "Basic dXNlcjpwYXNz"]
)
async def test_a_malformed_authorization_header_is_refused(client, header):
    response, body = await get_history(client, header)

    assert_refused(response, body)


async def test_a_token_that_is_not_a_jwt_is_refused_without_being_echoed(client):
    response, body = await get_history(client, "Bearer not-a-jwt-secret-looking-value")

    assert_refused(response, body, "not-a-jwt-secret-looking-value")


async def test_a_valid_token_is_accepted_and_the_scheme_is_case_insensitive(client, world):
    token = mint_token(world.settings.security, user_id=OWNER, admin=False, now=datetime.now(UTC))

    response, body = await get_history(client, f"bearer {token}")

    assert response.status == 200
    assert body == {"payments": [], "nextCursor": None}


async def test_an_expired_token_is_refused(client, world):
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    token = mint_token(world.settings.security, user_id=OWNER, admin=False, now=an_hour_ago, ttl_seconds=60)

    response, body = await get_history(client, f"Bearer {token}")

    assert_refused(response, body, token)
    assert body["error"]["message"] == "the token has expired"


async def test_a_token_expired_within_the_clock_skew_leeway_is_still_accepted(client, world):
    just_now = datetime.now(UTC) - timedelta(seconds=70)
    token = mint_token(world.settings.security, user_id=OWNER, admin=False, now=just_now, ttl_seconds=60)

    response, _ = await get_history(client, f"Bearer {token}")

    assert response.status == 200


@pytest.mark.parametrize(
    "security",
    [
        SecuritySettings(jwt_issuer="someone-else"),
        SecuritySettings(jwt_audience="another-service"),
        SecuritySettings(jwt_secret="a-different-secret-that-is-long-enough-0000"),
    ],
    ids=["issuer", "audience", "secret"],
)
async def test_a_token_from_another_issuer_audience_or_secret_is_refused(client, security):
    token = mint_token(security, user_id=OWNER, admin=False, now=datetime.now(UTC))

    response, body = await get_history(client, f"Bearer {token}")

    assert_refused(response, body, token)


@pytest.mark.parametrize("alg", ["none", "HS512"])
async def test_a_token_signed_with_another_algorithm_is_refused(client, world, alg):
    security = world.settings.security
    token = handmade_token(good_claims(security), secret=secret_of(security), alg=alg)

    response, body = await get_history(client, f"Bearer {token}")

    assert_refused(response, body, token)


async def test_the_handmade_hs256_token_is_accepted_so_the_algorithm_tests_test_only_the_algorithm(
    client, world
):
    security = world.settings.security
    token = handmade_token(good_claims(security), secret=secret_of(security))

    response, _ = await get_history(client, f"Bearer {token}")

    assert response.status == 200


@pytest.mark.parametrize(
    "overrides",
    [{"exp": None}, {"sub": None}, {"role": None}, {"role": "superuser"}, {"sub": "user 1"}, {"sub": ""}],
    ids=["no-exp", "no-sub", "no-role", "unknown-role", "unsafe-sub", "empty-sub"],
)
async def test_a_token_missing_a_required_claim_or_with_a_bad_one_is_refused(client, world, overrides):
    security = world.settings.security
    token = handmade_token(good_claims(security, **overrides), secret=secret_of(security))

    response, body = await get_history(client, f"Bearer {token}")

    assert_refused(response, body)


def test_a_minted_token_names_the_user_and_the_role():
    security = SecuritySettings()
    now = datetime.now(UTC)

    admin = principal_from_token(security, mint_token(security, user_id="ops-1", admin=True, now=now))
    user = principal_from_token(security, mint_token(security, user_id="u-7", admin=False, now=now))

    assert (admin.user_id, admin.is_admin) == ("ops-1", True)
    assert (user.user_id, user.is_admin) == ("u-7", False)


@pytest.mark.parametrize("user_id", ["", "has space", "x" * 129, "semi;colon"])
def test_a_token_cannot_be_minted_for_an_unsafe_user_id(user_id):
    with pytest.raises(ValueError, match="user id"):
        mint_token(SecuritySettings(), user_id=user_id, admin=False, now=datetime.now(UTC))


async def webhook(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def admin_only(request: web.Request) -> web.Response:
    return web.json_response({"admin": require_admin(request).user_id})


def add_test_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/webhooks/test", webhook)
    app.router.add_get("/api/v1/admin/test", admin_only)


async def test_webhook_routes_and_health_need_no_token(aiohttp_client, world):
    client = await aiohttp_client(world.app(add_test_routes))

    webhook_response = await client.post("/api/v1/webhooks/test")
    health_response = await client.get("/health")

    assert (webhook_response.status, health_response.status) == (200, 200)


async def test_an_unknown_api_path_asks_for_a_token_before_saying_it_does_not_exist(client, world):
    anonymous = await client.get("/api/v1/secret-admin-thing")
    signed_in = await client.get("/api/v1/secret-admin-thing", headers=world.headers())

    assert (anonymous.status, signed_in.status) == (401, 404)


async def test_admin_routes_refuse_users_with_403_and_serve_admins(aiohttp_client, world):
    client = await aiohttp_client(world.app(add_test_routes))

    as_user = await client.get("/api/v1/admin/test", headers=world.headers(OWNER))
    as_admin = await client.get("/api/v1/admin/test", headers=world.headers("ops-1", admin=True))

    assert as_user.status == 403
    assert (await as_user.json())["error"]["code"] == "forbidden"
    assert as_admin.status == 200
    assert await as_admin.json() == {"admin": "ops-1"}

"""Bearer-token authentication for the API (DESIGN §7, §8).

A token is a JWT signed with ``JWT_SECRET`` under HS256 (pinned: a token naming any other algorithm,
``none`` included, is refused). It must carry ``exp``, the configured ``iss`` and ``aud``, ``sub`` (the
user id) and ``role`` (``user`` or ``admin``). ``payments token`` mints one with ``mint_token``.

We check tokens in a middleware rather than a route decorator: every route under ``/api/v1/`` needs a
token except Cashfree's webhooks under ``/api/v1/webhooks/`` (they are authenticated by signature) and
Alertmanager's intake (``web/alertmanager.py``: a token of its own), so
a route added later is protected without anyone remembering to decorate it. Handlers read the caller
with ``principal_of(request)``; admin routes call ``require_admin(request)``. Error messages never
repeat the token or anything decoded from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import jwt
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from payments.domain.errors import Forbidden, Unauthenticated
from payments.pipeline.settings import SecuritySettings
from payments.web.keys import PRINCIPAL_KEY, SETTINGS_KEY

#: The only signing algorithm accepted; pinning it stops algorithm-confusion and ``none`` tokens.
ALGORITHM: Final = "HS256"
#: Tolerated clock skew between whoever minted a token and us.
LEEWAY_SECONDS: Final = 30
#: Routes under this prefix need a bearer token ...
API_PREFIX: Final = "/api/v1/"
#: ... except these, which authenticate by other means (Cashfree's webhook signature) ...
UNAUTHENTICATED_PREFIXES: Final = ("/api/v1/webhooks/",)
#: Alertmanager's intake (``web/alertmanager.py``), which checks a bearer token of its own ...
ALERTMANAGER_PATH: Final = "/api/v1/admin/alerts/alertmanager"
#: ... is the one exact route besides those prefixes that needs no JWT.
UNAUTHENTICATED_ROUTES: Final = frozenset({ALERTMANAGER_PATH})
#: User ids end up in payment ids, Redis keys and logs: short, and made of characters safe in all three.
USER_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:@+-]{1,128}")
#: No legitimate token of ours comes near this; anything longer is refused before any decoding.
_MAX_TOKEN_LENGTH: Final = 4096
_REQUIRED_CLAIMS: Final = ["exp", "iss", "aud", "sub"]


class Role(StrEnum):
    USER = "user"  #: acts on their own payments only
    ADMIN = "admin"  #: sees every payment and may use the admin routes


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    is_admin: bool


class InvalidToken(Unauthenticated):
    """A valid bearer token is required."""


def mint_token(
    security: SecuritySettings,
    *,
    user_id: str,
    admin: bool,
    now: datetime,
    ttl_seconds: int | None = None,
) -> str:
    """A signed token for ``user_id`` valid from ``now`` for ``ttl_seconds`` (default: the settings')."""
    if USER_ID_PATTERN.fullmatch(user_id) is None:
        raise ValueError("a user id is 1-128 characters of letters, digits and . _ : @ + -")
    lifetime = security.jwt_ttl_seconds if ttl_seconds is None else ttl_seconds
    if lifetime <= 0:
        raise ValueError("a token must live for at least one second")
    claims = {
        "sub": user_id,
        "role": (Role.ADMIN if admin else Role.USER).value,
        "iss": security.jwt_issuer,
        "aud": security.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
    }
    return jwt.encode(claims, security.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def authenticate(security: SecuritySettings, authorization: str | None) -> Principal:
    """The caller named by an ``Authorization: Bearer <jwt>`` header, or ``InvalidToken``."""
    if not authorization:
        raise InvalidToken("a bearer token is required")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    return principal_from_token(security, token)


def principal_from_token(security: SecuritySettings, token: str) -> Principal:
    """Check the token's signature, algorithm, expiry, issuer and audience, then read the caller."""
    try:
        claims = jwt.decode(
            token,
            security.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=security.jwt_audience,
            issuer=security.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired") from None
    except jwt.InvalidTokenError:
        # PyJWT's reason stays out of the answer: it is for us, and the client needs only "invalid".
        raise InvalidToken("the token is invalid") from None
    return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    user_id, role = claims.get("sub"), claims.get("role")
    if not isinstance(user_id, str) or USER_ID_PATTERN.fullmatch(user_id) is None:
        raise InvalidToken("the token is invalid")
    if role not in (Role.USER.value, Role.ADMIN.value):
        raise InvalidToken("the token is invalid")
    return Principal(user_id=user_id, is_admin=role == Role.ADMIN.value)


def needs_token(request: web.Request) -> bool:
    """True for API routes; false for the webhook routes, health, metrics and anything else."""
    resource = request.match_info.route.resource
    # The matched route's template decides where there is one, so no spelling of a path can slip a
    # protected route under the webhook prefix.
    template = resource.canonical if resource is not None else request.path
    if template.startswith(UNAUTHENTICATED_PREFIXES) or template in UNAUTHENTICATED_ROUTES:
        return False
    return template.startswith(API_PREFIX) or request.path.startswith(API_PREFIX)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require a valid bearer token on API routes and remember the caller for the handler."""
    if needs_token(request):
        security = request.config_dict[SETTINGS_KEY].security
        request[PRINCIPAL_KEY] = authenticate(security, request.headers.get(hdrs.AUTHORIZATION))
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    """The caller of an API route (``InvalidToken`` on a route the middleware does not guard)."""
    if PRINCIPAL_KEY not in request:
        raise InvalidToken("a bearer token is required")
    return request[PRINCIPAL_KEY]


def require_admin(request: web.Request) -> Principal:
    """The caller, if an admin; otherwise ``Forbidden`` (403) for admin-only routes."""
    principal = principal_of(request)
    if not principal.is_admin:
        raise Forbidden("this route is for administrators")
    return principal

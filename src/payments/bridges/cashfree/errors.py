"""Cashfree's HTTP answers mapped onto the domain error tree (FACTS §8).

    401, 403                       -> GatewayAuthenticationFailed   our credentials; an operator must act
    400, 422 and other 4xx         -> GatewayRejected(gateway_code)  Cashfree's ``code`` kept
      422 idempotency_error,
      400 idempotency_key_mismatch -> IdempotencyKeyReused           a bug on our side; never retried
    404                            -> NotFound
    409 order_already_exists       -> OrderAlreadyExists             the client fetches and compares
    409 otherwise                  -> GatewayConflict
    429                            -> GatewayRateLimited(defer=x-ratelimit-retry)
    5xx, anything else             -> DependencyUnavailable

The 429 and 5xx rows apply once the client's retries are spent. Messages carry Cashfree's code, its
message and its ``x-request-id`` (what support asks for), never a header we sent. A request that
would break Cashfree's rules is refused before sending with ``InvalidGatewayRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from payments.bridges.cashfree.models import ErrorBody
from payments.domain.errors import (
    DependencyUnavailable,
    GatewayAuthenticationFailed,
    GatewayConflict,
    GatewayRateLimited,
    GatewayRejected,
    NotFound,
    PaymentsError,
)

#: Cashfree's messages are short; anything longer is cut so one odd answer cannot flood the logs.
_MAX_MESSAGE_CHARS: Final = 300
#: SPEC answers a reused key with a different body with 422 of this type (FACTS §1) ...
_IDEMPOTENCY_ERROR_TYPE: Final = "idempotency_error"
#: ... and SKILLS says 400 with this code instead (UNCONFIRMED); both mean the same to us.
_IDEMPOTENCY_MISMATCH_CODE: Final = "idempotency_key_mismatch"
_ORDER_ALREADY_EXISTS: Final = "order_already_exists"
#: Statuses whose meaning does not depend on Cashfree's code.
_BY_STATUS: Final[Mapping[int, type[PaymentsError]]] = {
    401: GatewayAuthenticationFailed,
    # 403 is what an IP allow-list or a disabled product answers: our account, not the request.
    403: GatewayAuthenticationFailed,
    404: NotFound,
    409: GatewayConflict,
}


class IdempotencyKeyReused(GatewayRejected):
    """The payment gateway saw this idempotency key before with a different request."""

    code = "gateway_idempotency_key_reused"


class InvalidGatewayRequest(GatewayRejected):
    """The request breaks the payment gateway's rules and was not sent."""

    code = "gateway_request_invalid"


class OrderAlreadyExists(GatewayConflict):
    """The payment gateway already holds an order under this id."""


class UnreadableResponse(DependencyUnavailable):
    """The payment gateway answered with something we cannot read."""

    code = "gateway_unreadable_response"


def error_for_status(
    status: int, body: ErrorBody, *, retry_after: float | None = None, request_id: str | None = None
) -> PaymentsError:
    """The domain error for a non-2xx answer whose parsed error body is ``body``."""
    text = describe(status, body, request_id)
    if _reuses_idempotency_key(status, body):
        return IdempotencyKeyReused(text, gateway_code=body.code)
    if status == 409 and body.code == _ORDER_ALREADY_EXISTS:
        return OrderAlreadyExists(text)
    if status == 429:
        return GatewayRateLimited(text, defer=retry_after)
    if status in _BY_STATUS:
        return _BY_STATUS[status](text)
    if 400 <= status < 500:
        return GatewayRejected(text, gateway_code=body.code)
    return DependencyUnavailable(text)


def _reuses_idempotency_key(status: int, body: ErrorBody) -> bool:
    return status in (400, 422) and (
        body.type == _IDEMPOTENCY_ERROR_TYPE or body.code == _IDEMPOTENCY_MISMATCH_CODE
    )


def describe(status: int, body: ErrorBody, request_id: str | None) -> str:
    """``Cashfree answered 400 order_amount_invalid: <message> (x-request-id …)``."""
    code = body.code or body.type or "no code"
    message = (body.message or "").strip()[:_MAX_MESSAGE_CHARS]
    text = f"Cashfree answered {status} {code}"
    if message:
        text += f": {message}"
    if request_id:
        text += f" (x-request-id {request_id})"
    return text

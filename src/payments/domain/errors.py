"""The single error tree of CommDesk Payments.

Every error we raise on purpose descends from ``PaymentsError``. Each class's docstring is its default
message; ``code`` is the stable, machine-readable name that reaches API clients. Two branches carry a
decision for the runtime, not only a description:

    PaymentsError
    ├── Retry(defer=...)          transient trouble; try again later (retry tiers)
    │   ├── DependencyUnavailable   a database, broker, cache or gateway did not answer
    │   │   ├── GatewayRateLimited      the gateway asked us to slow down (defer = its wait)
    │   │   └── GatewayAuthenticationFailed  the gateway refused our credentials (an operator must act)
    │   └── ConcurrentTransition    someone else changed the row first; re-read and decide again
    ├── Reject(reason=...)        poison input; retrying cannot help (straight to the dead-letter queue)
    │   ├── InvalidPayload          a message or body that does not parse or validate
    │   ├── IllegalTransition       a state change the transition table does not allow
    │   └── GatewayRejected         the gateway refused the request as invalid (its code is kept)
    ├── NotFound                  the thing asked for does not exist (or is not yours)
    ├── Conflict                  the request collides with the current state
    │   └── GatewayConflict         the gateway holds a different resource under our id
    ├── ValidationFailed          the input breaks a business rule
    ├── Unauthenticated           no valid credentials
    └── Forbidden                 valid credentials, not allowed
"""

from __future__ import annotations

from typing import ClassVar


class PaymentsError(Exception):
    """Something went wrong in CommDesk Payments."""

    #: Stable error code for API clients and logs.
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or _default_message(type(self)))

    @property
    def message(self) -> str:
        return str(self)


class Retry(PaymentsError):
    """A transient failure; the work will be tried again."""

    code = "temporarily_unavailable"

    def __init__(self, message: str | None = None, *, defer: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the caller asks to wait before the next try; None lets the retry policy choose.
        self.defer = defer


class DependencyUnavailable(Retry):
    """A service we depend on is unavailable."""

    code = "dependency_unavailable"


class ConcurrentTransition(Retry):
    """The record was changed concurrently; the change was not applied."""

    code = "concurrent_change"


class Reject(PaymentsError):
    """The input can never be processed; retrying cannot help."""

    code = "rejected"

    def __init__(self, message: str | None = None, *, reason: str | None = None) -> None:
        super().__init__(message)
        #: A short, closed-set reason (e.g. ``invalid_payload``) safe to use as a metric label.
        self.reason = reason or self.code


class InvalidPayload(Reject):
    """The payload is malformed."""

    code = "invalid_payload"


class IllegalTransition(Reject):
    """That state change is not allowed."""

    code = "illegal_transition"


class GatewayRateLimited(DependencyUnavailable):
    """The payment gateway is rate limiting us."""

    code = "gateway_rate_limited"


class GatewayAuthenticationFailed(DependencyUnavailable):
    """The payment gateway refused our credentials."""

    code = "gateway_authentication_failed"


class GatewayRejected(Reject):
    """The payment gateway refused the request."""

    code = "gateway_rejected"

    def __init__(self, message: str | None = None, *, gateway_code: str | None = None) -> None:
        super().__init__(message, reason="gateway_rejected")
        #: The gateway's own error code (e.g. Cashfree's ``order_amount_invalid``), for support and logs.
        self.gateway_code = gateway_code


class NotFound(PaymentsError):
    """Not found."""

    code = "not_found"


class Conflict(PaymentsError):
    """The request conflicts with the current state."""

    code = "conflict"


class GatewayConflict(Conflict):
    """The payment gateway already holds a different resource under this id."""

    code = "gateway_conflict"


class ValidationFailed(PaymentsError):
    """The request is invalid."""

    code = "validation_failed"


class Unauthenticated(PaymentsError):
    """Authentication is required."""

    code = "unauthenticated"


class Forbidden(PaymentsError):
    """You are not allowed to do that."""

    code = "forbidden"


def _default_message(cls: type[PaymentsError]) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]

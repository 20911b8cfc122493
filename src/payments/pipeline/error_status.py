"""Which HTTP status each domain error means: shared by the web layer and by agents that answer
API commands, so a command's error reads the same whether the handler or the agent raised it."""

from __future__ import annotations

from typing import Final

from payments.domain.errors import (
    ConcurrentTransition,
    Conflict,
    Forbidden,
    IllegalTransition,
    NotFound,
    PaymentsError,
    Reject,
    Retry,
    Unauthenticated,
    ValidationFailed,
)

#: Domain error -> HTTP status. Checked in order, so a subclass comes before its base.
ERROR_STATUSES: Final[tuple[tuple[type[PaymentsError], int], ...]] = (
    (ValidationFailed, 400),
    (IllegalTransition, 409),
    (Reject, 400),  # InvalidPayload, GatewayRejected and any other input that can never succeed
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ConcurrentTransition, 409),
    (Retry, 503),  # DependencyUnavailable and any other transient trouble
)


def status_for(error: PaymentsError) -> int:
    """The HTTP status a domain error maps to; 500 for errors the table does not know."""
    for error_type, status in ERROR_STATUSES:
        if isinstance(error, error_type):
            return status
    return 500

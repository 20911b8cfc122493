"""Which driver failures mean "the database is unavailable", and how we say so to callers.

Callers (agents, the outbox relay, health checks) decide whether to retry from the domain error tree,
so connection-level failures leave this bridge as ``DependencyUnavailable``; a statement's own errors
(constraint violations, syntax) stay asyncpg errors because retrying cannot fix them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import asyncpg

from payments.domain.errors import DependencyUnavailable

#: asyncpg errors that describe the connection, not the statement: SQLSTATE class 08, the server
#: shutting down or starting up (57P01-57P03) and "too many connections" (53300).
DRIVER_CONNECTION_ERRORS: Final[tuple[type[Exception], ...]] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)

#: The driver errors plus what the socket and timers raise underneath them (refused, reset, timed out,
#: and a pool that found no free connection in time).
CONNECTION_ERRORS: Final[tuple[type[Exception], ...]] = (*DRIVER_CONNECTION_ERRORS, OSError, TimeoutError)


#: What asyncpg raises when a statement is sent on a connection that has just died (the server's
#: goodbye not yet read, or already read): a connection failure only if the connection is now closed.
CLOSED_CONNECTION_ERRORS: Final[tuple[type[Exception], ...]] = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def is_connection_failure(error: BaseException, *, connection_closed: bool) -> bool:
    """Whether ``error`` means the database connection failed rather than the statement."""
    if isinstance(error, CONNECTION_ERRORS):
        return True
    return connection_closed and isinstance(error, CLOSED_CONNECTION_ERRORS)


def database_unavailable(step: str, error: BaseException) -> DependencyUnavailable:
    """A retryable error naming the step that failed; the DSN is never included (it may hold a password)."""
    return DependencyUnavailable(f"PostgreSQL unavailable during {step}: {type(error).__name__}")


@contextmanager
def unavailable_on_connection_errors(step: str) -> Iterator[None]:
    """Re-raise connection failures inside the block as ``DependencyUnavailable``."""
    try:
        yield
    except CONNECTION_ERRORS as error:
        raise database_unavailable(step, error) from error

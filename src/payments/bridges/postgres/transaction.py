"""One pooled connection in one transaction: the shape shared by the unit of work and the outbox relay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from payments.bridges.postgres.errors import (
    CONNECTION_ERRORS,
    database_unavailable,
    is_connection_failure,
    unavailable_on_connection_errors,
)
from payments.bridges.postgres.pool import Connection


@asynccontextmanager
async def pooled_transaction(
    pool: asyncpg.Pool[asyncpg.Record], *, acquire_timeout: float
) -> AsyncIterator[PoolConnectionProxy[asyncpg.Record]]:
    """Acquire a connection and BEGIN; COMMIT on normal exit, ROLLBACK on exception, always release.

    Connection failures while acquiring, beginning or committing raise ``DependencyUnavailable``
    (a failed COMMIT may or may not have committed: callers rely on idempotency to retry safely).
    Exceptions raised by the block itself pass through unchanged.
    """
    with unavailable_on_connection_errors("acquire"):
        connection = await pool.acquire(timeout=acquire_timeout)
    try:
        transaction = connection.transaction()
        with unavailable_if_connection_lost("begin", connection):
            await transaction.start()
        try:
            yield connection
        except BaseException:
            await _roll_back_quietly(connection, transaction)
            raise
        with unavailable_if_connection_lost("commit", connection):
            await transaction.commit()
    finally:
        await _release_quietly(pool, connection)


def connection_is_closed(connection: Connection) -> bool:
    """Whether a connection has died; the pool detaches a lost connection from its proxy."""
    try:
        return connection.is_closed()
    except asyncpg.InterfaceError:
        # Only a lost connection is detached while we still hold it; release happens after us.
        return True


@contextmanager
def unavailable_if_connection_lost(step: str, connection: Connection) -> Iterator[None]:
    """Re-raise failures of ``connection`` itself inside the block as ``DependencyUnavailable``.

    Besides socket and timeout errors, asyncpg reports a statement sent on a connection that has just
    died as an interface error; that is a lost connection only if the connection is now closed.
    """
    try:
        yield
    except Exception as error:
        if is_connection_failure(error, connection_closed=connection_is_closed(connection)):
            raise database_unavailable(step, error) from error
        raise


async def _release_quietly(
    pool: asyncpg.Pool[asyncpg.Record], connection: PoolConnectionProxy[asyncpg.Record]
) -> None:
    # The pool resets a connection as it takes it back. If the server has just cut it (a restart), the
    # reset fails and asyncpg terminates the connection, which frees its slot, then re-raises. Raising
    # here would replace the block's real outcome (a commit that happened, or its own error) with a
    # 500; the slot is free either way.
    with suppress(*CONNECTION_ERRORS):
        await pool.release(connection)


async def _roll_back_quietly(connection: Connection, transaction: Transaction) -> None:
    # A broken connection cannot roll back; the pool discards it on release, which ends the
    # transaction server-side. The block's own exception is the one worth reporting.
    if connection_is_closed(connection):
        return
    with suppress(*CONNECTION_ERRORS):
        await transaction.rollback()

"""``pooled_transaction`` against a pool whose server has just cut the connection (a PostgreSQL restart).

asyncpg resets a connection as the pool takes it back; when the server has gone, that reset raises
after the block's real outcome is settled. The fakes below implement only what the function calls.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from payments.bridges.postgres.transaction import pooled_transaction


class _Transaction:
    def __init__(self, log: list[str]) -> None:
        self._log = log

    async def start(self) -> None:
        self._log.append("begin")

    async def commit(self) -> None:
        self._log.append("commit")

    async def rollback(self) -> None:
        self._log.append("rollback")


class _Connection:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def transaction(self) -> _Transaction:
        return _Transaction(self.log)

    def is_closed(self) -> bool:
        return False


class _PoolCutOnRelease:
    """Lends one connection; taking it back fails as asyncpg's reset does on a connection the server cut."""

    def __init__(self) -> None:
        self.connection = _Connection([])

    async def acquire(self, *, timeout: float) -> _Connection:
        return self.connection

    async def release(self, connection: _Connection) -> None:
        self.connection.log.append("release")
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def test_a_commit_stands_when_the_server_cuts_the_connection_as_it_is_released() -> None:
    pool: Any = _PoolCutOnRelease()

    async with pooled_transaction(pool, acquire_timeout=1) as connection:
        assert connection is pool.connection

    assert pool.connection.log == ["begin", "commit", "release"]


async def test_the_blocks_own_error_is_the_one_raised_when_release_fails_too() -> None:
    pool: Any = _PoolCutOnRelease()

    with pytest.raises(LookupError, match="the block's own"):
        async with pooled_transaction(pool, acquire_timeout=1):
            raise LookupError("the block's own")

    assert pool.connection.log == ["begin", "rollback", "release"]

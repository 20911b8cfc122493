"""``webhook:event:{dedup_key}`` in Redis: the replay cache of webhook ingest (``WebhookDedup``).

The value is ``pending`` from ``claim`` (SET NX PX, short) until ``confirm`` turns it into
``confirmed`` for the long retention (SET XX PX). ``release`` is a short Lua script, because it must
check that the key is still pending and delete it in one step: a confirmed key must survive a late
release from another request.

Claims and confirms asked for in the same turn of the event loop go to Redis together, as one pipeline
(``_SetBatch``): under load, many webhooks reach the same step at once, and each command sent alone
costs the web process more CPU than Redis spends on it (redis-py takes a pooled connection, arms its
timeouts and retry wrappers, and makes a socket write and a read). On the bench machine, with 32
webhooks in flight, the two SETs cost 130-180 µs of client CPU per webhook sent alone, under 60 batched.
Each caller still waits for its own command's reply, so a confirm is done before its webhook is
answered, exactly as when each was sent alone; a pipeline is not a transaction, each SET keeps its own
NX or XX rule, and their replies come back in order.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.bridges.redis.keys import webhook_event
from payments.domain.errors import DependencyUnavailable

PENDING: Final = b"pending"
CONFIRMED: Final = b"confirmed"

#: Delete the key only while it is pending (ARGV[1]); a confirmed event stays remembered.
_RELEASE_IF_PENDING: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisWebhookDedup:
    """The ``WebhookDedup`` of the web process.

    ``pending_ttl_seconds`` is ``domain.webhook.dedup.PENDING_TTL_SECONDS`` in production;
    ``confirmed_ttl_seconds`` is ``settings.cashfree.webhook_dedup_ttl_seconds``. ``key_prefix`` lets
    tests share one Redis database without seeing each other's keys.
    """

    def __init__(
        self,
        client: Redis,
        *,
        pending_ttl_seconds: float,
        confirmed_ttl_seconds: float,
        key_prefix: str = "",
    ) -> None:
        self._client = client
        self._pending_ms = _milliseconds(pending_ttl_seconds)
        self._confirmed_ms = _milliseconds(confirmed_ttl_seconds)
        self._prefix = key_prefix
        self._sets = _SetBatch(client)
        # register_script only hashes the script; Redis loads it on first use.
        self._release = client.register_script(_RELEASE_IF_PENDING)

    async def claim(self, key: str) -> bool:
        try:
            return await self._sets.send(_Set(self._key(key), PENDING, px=self._pending_ms, only_if_new=True))
        except (RedisError, OSError) as error:
            raise _unavailable("claim", error) from None

    async def confirm(self, key: str) -> None:
        try:
            await self._sets.send(_Set(self._key(key), CONFIRMED, px=self._confirmed_ms, only_if_new=False))
        except (RedisError, OSError) as error:
            raise _unavailable("confirm", error) from None

    async def release(self, key: str) -> None:
        # Rare (a failed publish) and never in a burst: sent on its own.
        try:
            await self._release(keys=[self._key(key)], args=[PENDING])
        except (RedisError, OSError) as error:
            raise _unavailable("release", error) from None

    def _key(self, key: str) -> str:
        return self._prefix + webhook_event(key)


@dataclass(frozen=True)
class _Set:
    """One ``SET key value PX px`` with ``NX`` (``only_if_new``) or ``XX`` (only if it exists)."""

    key: str
    value: bytes
    px: int
    only_if_new: bool


@dataclass
class _Queued:
    command: _Set
    reply: asyncio.Future[bool] = field(repr=False)


class _SetBatch:
    """Sends the ``_Set`` commands asked for in one turn of the event loop as one pipeline.

    The first ``send`` of a turn starts the flush task, whose first step runs in the next turn, after
    every callback already due in this one: the requests woken together have joined the batch by then.
    The flush is a task of its own, so a caller cancelled while waiting never strands the others' replies.
    """

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._queued: list[_Queued] = []
        #: The flush that will take ``_queued``; None once it has taken it.
        self._next_flush: asyncio.Task[None] | None = None
        #: Flushes in flight; asyncio keeps only weak references to tasks.
        self._flushes: set[asyncio.Task[None]] = set()

    async def send(self, command: _Set) -> bool:
        """True if Redis stored the value (False: NX found the key, or XX did not)."""
        reply: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queued.append(_Queued(command, reply))
        if self._next_flush is None:
            self._start_flush()
        return await reply

    def _start_flush(self) -> None:
        flush = asyncio.ensure_future(self._flush())
        self._next_flush = flush
        self._flushes.add(flush)
        flush.add_done_callback(self._flush_done)

    def _flush_done(self, flush: asyncio.Task[None]) -> None:
        self._flushes.discard(flush)
        if flush is not self._next_flush:
            return
        # Cancelled before it took its batch (at shutdown, or by anyone holding the task): the callers
        # still waiting get a flush of their own rather than waiting forever.
        self._next_flush = None
        self._queued = [queued for queued in self._queued if not queued.reply.done()]
        if self._queued:
            self._start_flush()

    async def _flush(self) -> None:
        batch, self._queued, self._next_flush = self._queued, [], None
        try:
            replies = await self._replies([queued.command for queued in batch])
        except BaseException as error:
            # The connection failed (or the flush was cancelled at shutdown): nobody got a reply.
            for queued in batch:
                _settle(queued.reply, error=error)
            if not isinstance(error, Exception):
                raise
            return
        for queued, reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                _settle(queued.reply, error=reply)
            else:
                _settle(queued.reply, result=bool(reply))

    async def _replies(self, commands: list[_Set]) -> list[object]:
        if len(commands) == 1:
            # A pipeline of one costs more than the command alone (a quiet moment, or a test).
            return [await _set(self._client, commands[0])]
        async with self._client.pipeline(transaction=False) as pipe:
            for command in commands:
                _set(pipe, command)
            return await pipe.execute(raise_on_error=False)


def _set(target: Redis, command: _Set) -> Any:
    # On a pipeline (a ``Redis`` too) this queues the command; on the client it returns the awaitable.
    return target.set(
        command.key, command.value, px=command.px, nx=command.only_if_new, xx=not command.only_if_new
    )


def _settle(reply: asyncio.Future[bool], *, result: bool = False, error: BaseException | None = None) -> None:
    if reply.done():  # its caller was cancelled while waiting
        return
    if isinstance(error, asyncio.CancelledError):
        reply.cancel()
    elif error is not None:
        reply.set_exception(error)
    else:
        reply.set_result(result)


def _milliseconds(seconds: float) -> int:
    milliseconds = round(seconds * 1000)
    if milliseconds < 1:
        raise ValueError("a time to live must be at least one millisecond")
    return milliseconds


def _unavailable(operation: str, error: Exception) -> DependencyUnavailable:
    # The type only: redis-py's message can name the host.
    return DependencyUnavailable(f"Redis did not answer a webhook dedup {operation}: {type(error).__name__}")

"""``idempotency:payment:{key}`` in Redis: one string per key, changed only atomically.

The value is ``inflight:{fingerprint}`` while the first request runs, then ``done:`` and a JSON record
of the answer. ``begin`` is one ``SET NX PX GET`` (Redis 7): it either takes the key or returns what
holds it, with no window between the two. ``complete`` and ``release`` are short Lua scripts, because
each must check the current value and change it in one step.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payments.bridges.redis.keys import idempotency_payment
from payments.domain.errors import DependencyUnavailable
from payments.domain.idempotency import BeginOutcome, Begun, StoredResponse

_IN_FLIGHT: Final = b"inflight:"
_DONE: Final = b"done:"
#: How long a key stays in flight without an answer: long enough for a slow command and its reply
#: timeout, short enough that a crashed handler blocks its key for a minute, not a day.
DEFAULT_IN_FLIGHT_SECONDS: Final = 60.0

#: Store the answer if the key is still in flight for this fingerprint (ARGV[1]) or has expired;
#: never overwrite an answer, nor a key another request now holds.
_COMPLETE: Final = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""

#: Free the key only while it is in flight: a stored answer must outlive any late release.
_RELEASE: Final = """
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisIdempotencyStore:
    """The ``IdempotencyStore`` of the web process.

    ``completed_ttl_seconds`` is how long an answer is replayed (settings.payments.idempotency_ttl_seconds);
    ``key_prefix`` lets tests share one Redis database without seeing each other's keys.
    """

    def __init__(
        self,
        client: Redis,
        *,
        completed_ttl_seconds: float,
        in_flight_ttl_seconds: float = DEFAULT_IN_FLIGHT_SECONDS,
        key_prefix: str = "",
    ) -> None:
        self._client = client
        self._completed_ms = _milliseconds(completed_ttl_seconds)
        self._in_flight_ms = _milliseconds(in_flight_ttl_seconds)
        self._prefix = key_prefix
        # register_script only hashes the scripts; Redis loads each on first use.
        self._complete = client.register_script(_COMPLETE)
        self._release = client.register_script(_RELEASE)

    async def begin(self, key: str, fingerprint: str) -> Begun:
        try:
            held = await self._client.set(
                self._key(key), _in_flight(fingerprint), nx=True, px=self._in_flight_ms, get=True
            )
        except (RedisError, OSError) as error:
            raise _unavailable("begin", error) from None
        if held is None:
            return Begun(BeginOutcome.NEW)
        if not isinstance(held, bytes):
            raise DependencyUnavailable("Redis answered an idempotency begin with an unexpected type")
        return _what_holds(held, fingerprint)

    async def complete(self, key: str, fingerprint: str, response: StoredResponse) -> None:
        try:
            await self._complete(
                keys=[self._key(key)],
                args=[_in_flight(fingerprint), _encode(fingerprint, response), self._completed_ms],
            )
        except (RedisError, OSError) as error:
            raise _unavailable("complete", error) from None

    async def release(self, key: str) -> None:
        try:
            await self._release(keys=[self._key(key)], args=[_IN_FLIGHT])
        except (RedisError, OSError) as error:
            raise _unavailable("release", error) from None

    def _key(self, key: str) -> str:
        return self._prefix + idempotency_payment(key)


def _what_holds(held: bytes, fingerprint: str) -> Begun:
    if held.startswith(_IN_FLIGHT):
        same = held == _in_flight(fingerprint)
        return Begun(BeginOutcome.IN_FLIGHT if same else BeginOutcome.MISMATCH)
    if not held.startswith(_DONE):
        raise DependencyUnavailable("an idempotency key holds a value this service did not write")
    record = json.loads(held.removeprefix(_DONE))
    if record["fingerprint"] != fingerprint:
        return Begun(BeginOutcome.MISMATCH)
    return Begun(BeginOutcome.REPLAY, _decode(record))


def _in_flight(fingerprint: str) -> bytes:
    return _IN_FLIGHT + fingerprint.encode("ascii")


def _encode(fingerprint: str, response: StoredResponse) -> bytes:
    record = {
        "fingerprint": fingerprint,
        "status": response.status,
        "contentType": response.content_type,
        "body": base64.b64encode(response.body).decode("ascii"),
    }
    return _DONE + json.dumps(record, separators=(",", ":")).encode("ascii")


def _decode(record: dict[str, Any]) -> StoredResponse:
    return StoredResponse(
        status=int(record["status"]),
        body=base64.b64decode(record["body"]),
        content_type=str(record["contentType"]),
    )


def _milliseconds(seconds: float) -> int:
    milliseconds = round(seconds * 1000)
    if milliseconds < 1:
        raise ValueError("a time to live must be at least one millisecond")
    return milliseconds


def _unavailable(operation: str, error: Exception) -> DependencyUnavailable:
    # The type only: redis-py's message can name the host.
    return DependencyUnavailable(f"Redis did not answer an idempotency {operation}: {type(error).__name__}")

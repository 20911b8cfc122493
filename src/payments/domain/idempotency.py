"""What an ``Idempotency-Key`` remembers (DESIGN §7: Stripe semantics), and the store that remembers it.

A write that carries a key first ``begin``s it. The first request with the key gets ``NEW`` and runs;
while it runs, the key is in flight and a second request with it gets ``IN_FLIGHT``. When it ends with a
final answer the handler ``complete``s the key with that answer, which later requests with the same
fingerprint get back as ``REPLAY``. A request whose fingerprint differs from the key's gets ``MISMATCH``
whatever the key's state. An answer that is not final (the work may still happen, or failed for a
reason a retry can fix) ``release``s the key instead, so the retry runs again.

The types live in the domain, not in ``web``, because the Redis bridge builds them and bridges may not
import ``web``; the store itself knows nothing of HTTP beyond carrying a status code back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class StoredResponse:
    """A final answer, byte for byte, as it is replayed."""

    status: int
    body: bytes
    content_type: str


class BeginOutcome(StrEnum):
    NEW = "new"  #: nobody holds the key: the caller now holds it in flight and must complete or release it
    IN_FLIGHT = "in_flight"  #: an earlier request with this key and fingerprint is still running
    REPLAY = "replay"  #: an earlier request with this key and fingerprint ended; its answer is attached
    MISMATCH = "mismatch"  #: the key was used for a different request


@dataclass(frozen=True)
class Begun:
    """What ``begin`` found; ``response`` is set exactly when the outcome is ``REPLAY``."""

    outcome: BeginOutcome
    response: StoredResponse | None = None

    def __post_init__(self) -> None:
        if (self.outcome is BeginOutcome.REPLAY) != (self.response is not None):
            raise ValueError("a stored response comes with REPLAY and only with it")


class IdempotencyStore(Protocol):
    """Keys and their final answers (``RedisIdempotencyStore``; ``InMemoryIdempotencyStore`` in tests).

    Keys are opaque to the store: the caller has already scoped them to a user and a route.
    In-flight entries expire quickly, so a crashed handler cannot block a key for long;
    completed ones are kept for the configured retention.
    """

    async def begin(self, key: str, fingerprint: str) -> Begun:
        """Take ``key`` in flight if it is free; otherwise say what holds it (atomic)."""
        ...

    async def complete(self, key: str, fingerprint: str, response: StoredResponse) -> None:
        """Store ``response`` as the key's answer, if the key is in flight for ``fingerprint`` or free.

        A completed entry, or one in flight for another fingerprint, is left as it is.
        """
        ...

    async def release(self, key: str) -> None:
        """Free ``key`` if it is in flight (a completed answer is never removed)."""
        ...

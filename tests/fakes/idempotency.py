"""An in-memory ``IdempotencyStore`` with the Redis store's rules, expiry included.

Each key holds either an in-flight fingerprint or a completed answer, with a deadline on the monotonic
clock. Every method runs without awaiting anything, so on one event loop each is as atomic as the
Redis command or script it stands in for. ``begins`` counts calls, for tests that want to see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from payments.domain.idempotency import BeginOutcome, Begun, StoredResponse


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    response: StoredResponse | None
    expires_at: float


class InMemoryIdempotencyStore:
    def __init__(
        self,
        *,
        completed_ttl_seconds: float = 86_400,
        in_flight_ttl_seconds: float = 60,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._completed_ttl = completed_ttl_seconds
        self._in_flight_ttl = in_flight_ttl_seconds
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        self.begins = 0

    async def begin(self, key: str, fingerprint: str) -> Begun:
        self.begins += 1
        entry = self._live(key)
        if entry is None:
            self._entries[key] = _Entry(fingerprint, None, self._monotonic() + self._in_flight_ttl)
            return Begun(BeginOutcome.NEW)
        if entry.fingerprint != fingerprint:
            return Begun(BeginOutcome.MISMATCH)
        if entry.response is None:
            return Begun(BeginOutcome.IN_FLIGHT)
        return Begun(BeginOutcome.REPLAY, entry.response)

    async def complete(self, key: str, fingerprint: str, response: StoredResponse) -> None:
        entry = self._live(key)
        if entry is None or (entry.response is None and entry.fingerprint == fingerprint):
            self._entries[key] = _Entry(fingerprint, response, self._monotonic() + self._completed_ttl)

    async def release(self, key: str) -> None:
        entry = self._live(key)
        if entry is not None and entry.response is None:
            del self._entries[key]

    def holds(self, key: str) -> bool:
        """Whether anything (in flight or completed) is stored under ``key``."""
        return self._live(key) is not None

    def __len__(self) -> int:
        return sum(1 for key in list(self._entries) if self._live(key) is not None)

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._monotonic():
            del self._entries[key]
            return None
        return entry

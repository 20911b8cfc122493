"""An in-memory ``WebhookDedup`` with the Redis store's rules, expiry included.

Each key is ``pending`` or ``confirmed`` with a deadline on the monotonic clock. Every method runs
without awaiting anything, so on one event loop each is as atomic as the Redis command or script it
stands in for. ``unavailable`` makes every call fail as a Redis outage does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from payments.domain.errors import DependencyUnavailable

State = Literal["pending", "confirmed"]


@dataclass(frozen=True)
class _Entry:
    state: State
    expires_at: float


class InMemoryWebhookDedup:
    def __init__(
        self,
        *,
        pending_ttl_seconds: float = 60,
        confirmed_ttl_seconds: float = 604_800,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pending_ttl = pending_ttl_seconds
        self._confirmed_ttl = confirmed_ttl_seconds
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        #: While True, every call raises ``DependencyUnavailable`` (Redis is down).
        self.unavailable = False

    async def claim(self, key: str) -> bool:
        self._answer_or_fail()
        if self._live(key) is not None:
            return False
        self._entries[key] = _Entry("pending", self._monotonic() + self._pending_ttl)
        return True

    async def confirm(self, key: str) -> None:
        self._answer_or_fail()
        if self._live(key) is not None:
            self._entries[key] = _Entry("confirmed", self._monotonic() + self._confirmed_ttl)

    async def release(self, key: str) -> None:
        self._answer_or_fail()
        entry = self._live(key)
        if entry is not None and entry.state == "pending":
            del self._entries[key]

    def state(self, key: str) -> State | None:
        """What is stored under ``key`` right now (None: nothing)."""
        entry = self._live(key)
        return entry.state if entry is not None else None

    def _answer_or_fail(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("Redis is down (fake)")

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._monotonic():
            del self._entries[key]
            return None
        return entry

"""Per-minute rate limits on the sandbox clock, with Cashfree's ``x-ratelimit-*`` answers (FACTS §9).

A sliding window: a call counts for 60 sandbox seconds. Once a bucket is full the call is refused and
``retry`` says how many seconds until the oldest counted call leaves the window (1 to 59).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

WINDOW: Final = timedelta(minutes=1)


class LimitKind(StrEnum):
    APP_ID = "app_id"  #: counted per account (the ``x-client-id``)
    IP = "ip"  #: counted per caller address (Order Pay, which has no credentials)


@dataclass(frozen=True)
class Limit:
    bucket: str  #: calls in one bucket share a count
    per_minute: int
    kind: LimitKind


@dataclass(frozen=True)
class Quota:
    """What the ``x-ratelimit-*`` headers report after a call."""

    limit: int
    remaining: int
    retry: int  #: seconds to wait; 0 while under the limit
    kind: LimitKind
    exceeded: bool = False


class RateLimiter:
    """Counts calls per ``(bucket, key)`` over the last minute of sandbox time."""

    def __init__(self, *, enforce: bool = True) -> None:
        self._enforce = enforce
        self._calls: dict[tuple[str, str], deque[datetime]] = {}

    def take(self, limit: Limit, key: str, now: datetime) -> Quota:
        """Count one call; ``exceeded`` (and nothing counted) when the window is full."""
        calls = self._window(limit, key, now)
        if self._enforce and len(calls) >= limit.per_minute:
            wait = (calls[0] + WINDOW - now).total_seconds()
            return Quota(limit.per_minute, 0, min(max(math.ceil(wait), 1), 59), limit.kind, exceeded=True)
        calls.append(now)
        return Quota(limit.per_minute, max(limit.per_minute - len(calls), 0), 0, limit.kind)

    def peek(self, limit: Limit, key: str, now: datetime) -> Quota:
        """The quota without counting a call (for answers refused before the limiter ran)."""
        calls = self._window(limit, key, now)
        return Quota(limit.per_minute, max(limit.per_minute - len(calls), 0), 0, limit.kind)

    def _window(self, limit: Limit, key: str, now: datetime) -> deque[datetime]:
        calls = self._calls.setdefault((limit.bucket, key), deque())
        while calls and calls[0] + WINDOW <= now:
            calls.popleft()
        return calls

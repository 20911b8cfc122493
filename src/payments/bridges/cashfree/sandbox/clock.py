"""The sandbox clock: real time, sped up by ``clock_speed``, plus manual advances.

Every sandbox-time delay (attempt outcome, refund completion, webhook retries, order expiry,
idempotency TTL) reads this clock, so a test can jump 30 minutes without waiting for them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

#: Cashfree writes every timestamp in India Standard Time.
IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")


class SandboxClock:
    """``now = start + elapsed real time * speed + advances``; never goes backwards."""

    def __init__(
        self,
        *,
        speed: float,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._speed = speed
        self._monotonic = monotonic
        self._start = wall()
        self._start_tick = monotonic()
        self._advanced = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def advanced_seconds(self) -> float:
        return self._advanced

    def now(self) -> datetime:
        """The current sandbox time (UTC)."""
        elapsed = (self._monotonic() - self._start_tick) * self._speed + self._advanced
        return self._start + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> datetime:
        """Jump forward; returns the new sandbox time."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._advanced += seconds
        return self.now()


def cashfree_time(moment: datetime) -> str:
    """``2025-01-31T18:04:05+05:30``: the ISO 8601 form Cashfree uses in bodies."""
    return moment.astimezone(IST).isoformat(timespec="seconds")


def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time; a bare date is read in IST (its end when ``end_of_day``)."""
    moment = datetime.fromisoformat(text)
    if len(text) <= len("2025-01-31"):
        moment = moment.replace(tzinfo=IST)
        if end_of_day:
            moment += timedelta(days=1, microseconds=-1)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return moment.astimezone(UTC)

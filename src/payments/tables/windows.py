"""Window maths for tables: which windows an event falls in, which one a read means, when each expires.

Everything here is a pure function of integers: event times in milliseconds since the Unix epoch (UTC),
converted once from aware datetimes by ``epoch_ms``. Windows are half-open spans ``[start, end)`` aligned
to the epoch, so every worker and every replay cuts time the same way:

- ``Tumbling(size)``: back-to-back windows ``[n*size, (n+1)*size)``; an event is in exactly one.
- ``Hopping(size, step)``: windows of ``size`` starting at every multiple of ``step``; an event is in
  ``size / step`` of them. A read at ``t`` means the most recently started window that contains ``t``.
- ``Sliding(size)``: a read at ``t`` means the last ``size`` of time, ``(t - size, t]``, which is the
  span ``[t - size + 1, t + 1)``. The store keeps each event on its own; its one span is the *last*
  window that contains it, ``[at, at + size)`` (the read at ``at + size - 1``), so the event is kept for
  exactly as long as some window that holds it can still be read.

Retention is how long after a window's end the window is kept, and so how long it still accepts late
events and can still be read (default: one ``size``). A window expires at ``end + retention``
(``expires_at_ms``); a read of an expired window is 0, as if nothing had happened in it.

Late events. An event is applied to each of its windows that has not expired at the current clock time
(``now_ms < expires_at_ms(span)``); windows that have already expired are skipped. An event with no live
window at all is *late*: the table reports it back to the caller (``Applied.late``), it is never an
error, and nothing is stored. Placement follows event time and expiry follows the clock, so replaying
old events into empty tables reproduces exactly the windows that are still alive, with the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeAlias

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Span:
    """A window of event time, ``[start_ms, end_ms)`` in milliseconds since the epoch."""

    start_ms: int
    end_ms: int

    def __contains__(self, at_ms: object) -> bool:
        return isinstance(at_ms, int) and self.start_ms <= at_ms < self.end_ms


def epoch_ms(moment: datetime) -> int:
    """``moment`` (timezone-aware) as whole milliseconds since the epoch, rounded down, exactly."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("table times must be timezone-aware (UTC); got a naive datetime")
    return (moment - _EPOCH) // _MILLISECOND


def from_epoch_ms(at_ms: int) -> datetime:
    """The UTC datetime of ``at_ms``: the inverse of ``epoch_ms``."""
    return _EPOCH + at_ms * _MILLISECOND


def _milliseconds(duration: timedelta, what: str, *, positive: bool) -> int:
    if duration % _MILLISECOND:
        raise ValueError(f"a window {what} must be a whole number of milliseconds, not {duration}")
    milliseconds = duration // _MILLISECOND
    if milliseconds < 0 or (positive and milliseconds == 0):
        bound = "positive" if positive else "zero or more"
        raise ValueError(f"a window {what} must be {bound}, not {duration}")
    return milliseconds


def _retention_ms(size: timedelta, retention: timedelta | None) -> int:
    return _milliseconds(size if retention is None else retention, "retention", positive=False)


def _check_count(count: int) -> None:
    if count < 0:
        raise ValueError(f"a history has zero or more windows, not {count}")


class _Sized:
    """What every window kind shares: a size, a retention, and when a window of it expires."""

    size: timedelta
    retention: timedelta | None

    def __post_init__(self) -> None:
        _milliseconds(self.size, "size", positive=True)
        _retention_ms(self.size, self.retention)

    @property
    def size_ms(self) -> int:
        return self.size // _MILLISECOND

    @property
    def retention_ms(self) -> int:
        return _retention_ms(self.size, self.retention)

    def expires_at_ms(self, span: Span) -> int:
        return span.end_ms + self.retention_ms


@dataclass(frozen=True)
class Tumbling(_Sized):
    """Back-to-back windows of ``size``; each is kept ``retention`` (default ``size``) after its end."""

    size: timedelta
    retention: timedelta | None = None

    def spans_for(self, at_ms: int) -> tuple[Span, ...]:
        return (self.span_at(at_ms),)

    def span_at(self, at_ms: int) -> Span:
        # Python's % is never negative for a positive divisor, so times before 1970 align too.
        start = at_ms - at_ms % self.size_ms
        return Span(start, start + self.size_ms)

    def history(self, at_ms: int, count: int) -> tuple[Span, ...]:
        """The ``count`` windows before the one at ``at_ms``, oldest first."""
        _check_count(count)
        current = self.span_at(at_ms).start_ms
        size = self.size_ms
        return tuple(Span(current - back * size, current - (back - 1) * size) for back in range(count, 0, -1))


@dataclass(frozen=True)
class Hopping(_Sized):
    """Windows of ``size`` starting every ``step`` (``size`` a multiple of ``step``), overlapping."""

    size: timedelta
    step: timedelta
    retention: timedelta | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        step = _milliseconds(self.step, "step", positive=True)
        if self.size_ms % step:
            raise ValueError(f"a hopping size ({self.size}) must be a multiple of its step ({self.step})")

    @property
    def step_ms(self) -> int:
        return self.step // _MILLISECOND

    def spans_for(self, at_ms: int) -> tuple[Span, ...]:
        """The ``size / step`` windows holding ``at_ms``, oldest first."""
        latest = self.span_at(at_ms).start_ms
        first = latest - self.size_ms + self.step_ms
        return tuple(Span(start, start + self.size_ms) for start in range(first, latest + 1, self.step_ms))

    def span_at(self, at_ms: int) -> Span:
        start = at_ms - at_ms % self.step_ms
        return Span(start, start + self.size_ms)

    def history(self, at_ms: int, count: int) -> tuple[Span, ...]:
        """The ``count`` windows started before the one at ``at_ms`` (one ``step`` apart), oldest first."""
        _check_count(count)
        current = self.span_at(at_ms).start_ms
        starts = (current - back * self.step_ms for back in range(count, 0, -1))
        return tuple(Span(start, start + self.size_ms) for start in starts)


@dataclass(frozen=True)
class Sliding(_Sized):
    """The last ``size`` of time before each read, to the millisecond; readable ``retention`` after it."""

    size: timedelta
    retention: timedelta | None = None

    def spans_for(self, at_ms: int) -> tuple[Span, ...]:
        """The last window holding an event at ``at_ms``: the one read at ``at_ms + size - 1``."""
        return (Span(at_ms, at_ms + self.size_ms),)

    def span_at(self, at_ms: int) -> Span:
        """``(at - size, at]``: an event exactly ``size`` before the read is already out."""
        return Span(at_ms - self.size_ms + 1, at_ms + 1)


#: Every kind of window a table can have.
Window: TypeAlias = Tumbling | Hopping | Sliding


def is_live(window: Window, span: Span, now_ms: int) -> bool:
    """Whether ``span`` of ``window`` still accepts events and can be read at clock time ``now_ms``."""
    return now_ms < window.expires_at_ms(span)

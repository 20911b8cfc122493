"""``Table``: a windowed value per key (count, sum or distinct members), Faust style (DESIGN §4).

Fraud velocity checks and failure-rate alerts keep their state here::

    velocity = Table("velocity_by_user", window=Sliding(timedelta(minutes=10)), kind=Kind.COUNT,
                     store=store, clock=clock.now)
    applied = await velocity.add(event.user_id, event.event_id, at=event.occurred_at)
    if applied.value > VELOCITY_LIMIT: ...

Tables are keyed by event time, so a replay rebuilds the same values, and updates are idempotent per
(table, key, event id), so redelivery and replay never count an event twice. Which windows an event goes
into, when an event is late and when a window expires is ``windows.py``'s business; the table works that
out and hands the store one atomic ``Change``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from payments.tables.store import Cell, Change, Kind, Layout, TableSpec, WindowStore, aggregate
from payments.tables.windows import Sliding, Span, Window, epoch_ms, is_live

__all__ = ["Applied", "Kind", "Table"]


@dataclass(frozen=True)
class Applied:
    """What ``Table.add`` did with an event."""

    #: The key's value, after this event, in the window read at the event's time (``span_at(at)``);
    #: 0 if that window has expired.
    value: int
    #: False if this event id was already applied (redelivery, replay) or the event was late.
    counted: bool
    #: True if every window of the event had expired: nothing was stored.
    late: bool


class Table:
    """One named table: a window, a kind of value, a store, and the clock that decides expiry."""

    def __init__(
        self,
        name: str,
        *,
        window: Window,
        kind: Kind,
        store: WindowStore,
        clock: Callable[[], datetime],
    ) -> None:
        if not name:
            raise ValueError("a table needs a name")
        self._name = name
        self._window = window
        self._kind = Kind(kind)
        self._store = store
        self._clock = clock
        layout = Layout.EVENTS if isinstance(window, Sliding) else Layout.WINDOWS
        lifetime_ms = window.size_ms + window.retention_ms
        self._spec = TableSpec(name=name, kind=self._kind, layout=layout, lifetime_ms=lifetime_ms)

    @property
    def name(self) -> str:
        return self._name

    @property
    def window(self) -> Window:
        return self._window

    @property
    def kind(self) -> Kind:
        return self._kind

    async def add(self, key: str, event_id: str, *, at: datetime, value: int | str = 1) -> Applied:
        """Apply the event ``event_id`` at event time ``at`` to ``key``'s live windows, once.

        ``value``: ignored by COUNT; the amount (an int, money in minor units) for SUM; the member (a str)
        for DISTINCT. A late event or a repeated event id changes nothing and is reported, never raised.
        """
        payload = _payload(self._kind, value)
        at_ms, now_ms = epoch_ms(at), self._now_ms()
        windows = tuple(span for span in self._window.spans_for(at_ms) if is_live(self._window, span, now_ms))
        change = Change(
            key=key,
            event_id=event_id,
            at_ms=at_ms,
            payload=payload,
            windows=windows,
            read=self._live_or_none(self._window.span_at(at_ms), now_ms),
            now_ms=now_ms,
        )
        added = await self._store.add(self._spec, change)
        return Applied(value=added.value, counted=added.counted, late=not windows)

    async def get(self, key: str, *, at: datetime | None = None) -> int:
        """``key``'s value in the window read at ``at`` (default: now); 0 if that window has expired."""
        now_ms = self._now_ms()
        at_ms = now_ms if at is None else epoch_ms(at)
        return (await self._read(key, [self._window.span_at(at_ms)], now_ms))[0]

    async def current(self, key: str) -> int:
        """``key``'s value in the window read now (Faust's ``table[key].current()``)."""
        return await self.get(key)

    async def delta(self, key: str, ago: timedelta) -> int:
        """``key``'s value in the window read ``ago`` before now (Faust's ``.delta(...)``)."""
        return await self.get(key, at=self._clock() - ago)

    async def history(self, key: str, *, at: datetime | None = None, windows: int) -> list[int]:
        """``key``'s values in the ``windows`` windows before the one read at ``at``, oldest first.

        Tumbling and hopping tables only (a trailing baseline); expired windows read as 0.
        """
        if isinstance(self._window, Sliding):
            raise TypeError(f"table {self._name!r} slides: it has no earlier windows to read")
        now_ms = self._now_ms()
        at_ms = now_ms if at is None else epoch_ms(at)
        return await self._read(key, self._window.history(at_ms, windows), now_ms)

    async def snapshot(self) -> dict[str, dict[int, int]]:
        """Every live value: key -> window start (ms since the epoch) -> value.

        Tumbling and hopping: each window that holds an event. Sliding: the window read at each time
        where a value can change (each event's time, and ``size`` later when it drops out) and at the
        earliest time still readable, so two snapshots are equal exactly when every read agrees.
        """
        now_ms = self._now_ms()
        cells = await self._store.cells(self._spec, now_ms=now_ms)
        if not isinstance(self._window, Sliding):
            return {key: {cell.start_ms: int(cell.value) for cell in found} for key, found in cells.items()}
        return {key: self._sliding_values(found, now_ms) for key, found in cells.items() if found}

    async def clear(self) -> None:
        """Forget every window and event id of this table (before a replay into an empty table)."""
        await self._store.clear(self._spec)

    async def _read(self, key: str, spans: Sequence[Span], now_ms: int) -> list[int]:
        live = [span for span in spans if is_live(self._window, span, now_ms)]
        values = dict(zip(live, await self._store.read(self._spec, key, live), strict=True)) if live else {}
        return [values.get(span, 0) for span in spans]

    def _live_or_none(self, span: Span, now_ms: int) -> Span | None:
        return span if is_live(self._window, span, now_ms) else None

    def _now_ms(self) -> int:
        return epoch_ms(self._clock())

    def _sliding_values(self, events: list[Cell], now_ms: int) -> dict[int, int]:
        window = self._window
        # A read at t is live while now < t + 1 + retention: the earliest readable time is now - retention.
        earliest = now_ms - window.retention_ms
        changes = {earliest} | {e.start_ms for e in events} | {e.start_ms + window.size_ms for e in events}
        values: dict[int, int] = {}
        for read_at in sorted(t for t in changes if t >= earliest):
            span = window.span_at(read_at)
            values[span.start_ms] = aggregate(self._kind, (e.value for e in events if e.start_ms in span))
        return values


def _payload(kind: Kind, value: int | str) -> int | str:
    if kind is Kind.COUNT:
        return 1
    if kind is Kind.SUM:
        # bool is an int to Python, and a float has no business in money.
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a sum table adds integers (minor units), not {type(value).__name__}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"a distinct table counts members: pass the member str, not {type(value).__name__}")
    return value

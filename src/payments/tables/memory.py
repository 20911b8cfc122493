"""``MemoryWindowStore``: a ``WindowStore`` in dicts, with the Redis store's rules, expiry included.

Unit tests of other layers build their tables on it. Every method runs without awaiting anything, so on
one event loop each is as atomic as the Lua script it stands in for. Expiry follows the clock times the
table passes in (``Change.now_ms``, ``cells(now_ms=...)``), so a test advances a fake clock and the store
forgets what Redis would have forgotten by then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from payments.tables.store import Added, Cell, Change, Kind, Layout, TableSpec, aggregate
from payments.tables.windows import Span


@dataclass
class _Window:
    ids: set[str] = field(default_factory=set)
    total: int = 0
    members: set[str] = field(default_factory=set)

    def value(self, kind: Kind) -> int:
        return len(self.members) if kind is Kind.DISTINCT else self.total


@dataclass(frozen=True)
class _Event:
    at_ms: int
    payload: int | str


@dataclass
class _Cells:
    #: (key, window start) -> window (``Layout.WINDOWS``).
    windows: dict[tuple[str, int], _Window] = field(default_factory=dict)
    #: key -> event id -> event (``Layout.EVENTS``).
    events: dict[str, dict[str, _Event]] = field(default_factory=dict)


class MemoryWindowStore:
    """The ``WindowStore`` of unit tests: one process's dicts, no network."""

    def __init__(self) -> None:
        self._tables: dict[str, _Cells] = {}

    async def add(self, table: TableSpec, change: Change) -> Added:
        cells = self._live(table, change.now_ms)
        if table.layout is Layout.WINDOWS:
            counted = _add_to_windows(cells, table.kind, change)
        else:
            counted = _add_event(cells, change)
        value = 0 if change.read is None else self._value(table, change.key, change.read)
        return Added(counted=counted, value=value)

    async def read(self, table: TableSpec, key: str, windows: Sequence[Span]) -> list[int]:
        return [self._value(table, key, span) for span in windows]

    async def cells(self, table: TableSpec, *, now_ms: int) -> dict[str, list[Cell]]:
        cells = self._live(table, now_ms)
        found: dict[str, list[Cell]] = {}
        if table.layout is Layout.WINDOWS:
            for (key, start), window in sorted(cells.windows.items()):
                found.setdefault(key, []).append(Cell(start, window.value(table.kind)))
        else:
            for key, events in cells.events.items():
                by_time = sorted(events.values(), key=lambda event: event.at_ms)
                found[key] = [Cell(event.at_ms, event.payload) for event in by_time]
        return found

    async def clear(self, table: TableSpec) -> None:
        self._tables.pop(table.name, None)

    def _live(self, table: TableSpec, now_ms: int) -> _Cells:
        """The table's cells, after forgetting those expired at ``now_ms`` (Redis's TTLs do that there)."""
        cells = self._tables.setdefault(table.name, _Cells())
        lifetime = table.lifetime_ms
        for place in [place for place in cells.windows if place[1] + lifetime <= now_ms]:
            del cells.windows[place]
        for key, events in list(cells.events.items()):
            expired = [event_id for event_id, event in events.items() if event.at_ms + lifetime <= now_ms]
            for event_id in expired:
                del events[event_id]
            if not events:
                del cells.events[key]
        return cells

    def _value(self, table: TableSpec, key: str, span: Span) -> int:
        cells = self._tables.get(table.name, _Cells())
        if table.layout is Layout.WINDOWS:
            window = cells.windows.get((key, span.start_ms))
            return 0 if window is None else window.value(table.kind)
        events = cells.events.get(key, {}).values()
        return aggregate(table.kind, (event.payload for event in events if event.at_ms in span))


def _add_to_windows(cells: _Cells, kind: Kind, change: Change) -> bool:
    counted = False
    for span in change.windows:
        window = cells.windows.setdefault((change.key, span.start_ms), _Window())
        if change.event_id in window.ids:
            continue
        window.ids.add(change.event_id)
        counted = True
        if kind is Kind.DISTINCT:
            window.members.add(str(change.payload))
        else:
            window.total += int(change.payload)
    return counted


def _add_event(cells: _Cells, change: Change) -> bool:
    if not change.windows:
        return False
    events = cells.events.setdefault(change.key, {})
    if change.event_id in events:
        return False
    events[change.event_id] = _Event(change.at_ms, change.payload)
    return True

"""What a table keeps, and the ``WindowStore`` Protocol that keeps it (in memory, or in Redis).

A store never does window maths: ``Table`` works out which live windows an event goes into and which
window a read means, and hands the store a ``Change`` or a list of spans. The store keeps *cells* in one
of two layouts:

- ``Layout.WINDOWS`` (tumbling, hopping): one cell per key and window, holding the window's value and the
  ids of the events applied to it.
- ``Layout.EVENTS`` (sliding): one cell per key and event, holding its time and payload; reading a window
  aggregates the events whose time falls in it.

A cell starting at ``s`` (a window's start, or an event's time) is kept until ``s + lifetime_ms`` and then
forgotten, event ids included. That is safe for idempotency: by then the event would be late anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from payments.tables.windows import Span


class Kind(StrEnum):
    """What a table's value is, per key and window."""

    #: The number of events (``value`` is ignored).
    COUNT = "count"
    #: The sum of the events' integer values (money in minor units; never floats).
    SUM = "sum"
    #: The number of distinct members (``value`` is the member, e.g. a user id).
    DISTINCT = "distinct"


class Layout(StrEnum):
    """How a store keeps a table's cells."""

    #: One aggregate per window (tumbling, hopping).
    WINDOWS = "windows"
    #: Every event on its own (sliding).
    EVENTS = "events"


@dataclass(frozen=True)
class TableSpec:
    """A table as a store sees it. A name is one table: two specs with one name share their cells."""

    name: str
    kind: Kind
    layout: Layout
    #: How long after its start a cell is kept: the window size plus its retention.
    lifetime_ms: int


@dataclass(frozen=True)
class Change:
    """One ``Table.add``, worked out by the window maths, for a store to apply atomically."""

    key: str
    event_id: str
    #: The event's time.
    at_ms: int
    #: COUNT: 1; SUM: the amount; DISTINCT: the member.
    payload: int | str
    #: The live windows the event goes into, oldest first; empty when the event is late.
    #: ``Layout.EVENTS``: the one span ``[at_ms, at_ms + size)`` while the event is live.
    windows: tuple[Span, ...]
    #: The window whose value to return after the change; None when it has expired (its value is 0).
    read: Span | None
    #: The clock time of the change; cells that have expired by then are forgotten.
    now_ms: int


@dataclass(frozen=True)
class Added:
    """What a store did with a ``Change``."""

    #: True if the event was applied to at least one window it had not been applied to before.
    counted: bool
    #: The value of ``Change.read`` after the change (0 when there is none).
    value: int


@dataclass(frozen=True)
class Cell:
    """A live cell: a window (``start_ms`` and its value) or an event (its time and payload)."""

    start_ms: int
    value: int | str


class WindowStore(Protocol):
    """Keeps the cells of tables, atomically per change; ``MemoryWindowStore`` and ``RedisWindowStore``."""

    async def add(self, table: TableSpec, change: Change) -> Added:
        """Apply ``change`` as one atomic step and return the value of ``change.read`` after it.

        For each window in ``change.windows`` whose event ids do not yet hold ``change.event_id``, record
        the id and add the payload. Concurrent adds of distinct events are all applied; concurrent adds
        of one event are applied once. Cells of ``table`` expired at ``change.now_ms`` are forgotten.
        """
        ...

    async def read(self, table: TableSpec, key: str, windows: Sequence[Span]) -> list[int]:
        """The values of ``key`` in ``windows`` (all live), in order; 0 for a window with nothing in it."""
        ...

    async def cells(self, table: TableSpec, *, now_ms: int) -> dict[str, list[Cell]]:
        """Every cell of ``table`` still live at ``now_ms``, per key, ordered by start."""
        ...

    async def clear(self, table: TableSpec) -> None:
        """Forget every cell of ``table``, event ids included."""
        ...


def aggregate(kind: Kind, payloads: Iterable[int | str]) -> int:
    """The value of a window holding events with ``payloads`` (``Layout.EVENTS``)."""
    if kind is Kind.DISTINCT:
        return len(set(payloads))
    if kind is Kind.SUM:
        return sum(int(payload) for payload in payloads)
    return sum(1 for _ in payloads)

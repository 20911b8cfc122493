"""Table on the memory store: what it refuses, and what it asks of its store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from payments.tables.memory import MemoryWindowStore
from payments.tables.store import Added, Change, Kind, TableSpec
from payments.tables.table import Applied, Table
from payments.tables.windows import Hopping, Sliding, Span, Tumbling, epoch_ms
from tests.contracts_tables import MINUTE, T0, FakeClock


class RecordingStore(MemoryWindowStore):
    """The memory store, remembering every change and read it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Change] = []
        self.reads: list[list[Span]] = []

    async def add(self, table: TableSpec, change: Change) -> Added:
        self.changes.append(change)
        return await super().add(table, change)

    async def read(self, table: TableSpec, key: str, windows) -> list[int]:
        self.reads.append(list(windows))
        return await super().read(table, key, windows)


def table_of(kind: Kind = Kind.COUNT, window=None, store=None, clock=None) -> Table:
    return Table(
        "t",
        window=window or Tumbling(MINUTE),
        kind=kind,
        store=store or MemoryWindowStore(),
        clock=clock or FakeClock(),
    )


def test_a_table_shows_its_name_window_and_kind_and_takes_the_kind_as_text():
    window = Sliding(10 * MINUTE)

    table = Table("velocity", window=window, kind="distinct", store=MemoryWindowStore(), clock=FakeClock())  # type: ignore[arg-type]

    assert (table.name, table.window, table.kind) == ("velocity", window, Kind.DISTINCT)


def test_a_table_needs_a_name():
    with pytest.raises(ValueError, match="name"):
        Table("", window=Tumbling(MINUTE), kind=Kind.COUNT, store=MemoryWindowStore(), clock=FakeClock())


@pytest.mark.parametrize("amount", [1.5, True, "100"])
async def test_a_sum_table_refuses_anything_but_integers(amount):
    table = table_of(Kind.SUM)

    with pytest.raises(TypeError, match="integers"):
        await table.add("k", "e1", at=T0, value=amount)

    assert await table.snapshot() == {}


async def test_a_distinct_table_refuses_a_member_that_is_not_text():
    with pytest.raises(TypeError, match="member"):
        await table_of(Kind.DISTINCT).add("k", "e1", at=T0, value=7)


async def test_a_count_table_ignores_the_value():
    table = table_of(Kind.COUNT)

    applied = await table.add("k", "e1", at=T0, value=1_000)

    assert applied == Applied(value=1, counted=True, late=False)


async def test_a_naive_event_time_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        await table_of().add("k", "e1", at=datetime(2030, 1, 1))


async def test_a_sliding_table_has_no_history():
    with pytest.raises(TypeError, match="no earlier windows"):
        await table_of(window=Sliding(MINUTE)).history("k", windows=3)


async def test_a_late_event_reaches_the_store_with_no_window_and_no_read():
    store = RecordingStore()
    clock = FakeClock(T0 + 10 * MINUTE)
    table = table_of(window=Hopping(2 * MINUTE, MINUTE), store=store, clock=clock)

    applied = await table.add("k", "e1", at=T0)

    assert applied.late is True
    assert (store.changes[0].windows, store.changes[0].read) == ((), None)


async def test_an_add_hands_the_store_only_the_live_windows_and_the_read_window():
    store = RecordingStore()
    clock = FakeClock(T0 + 3 * MINUTE + timedelta(seconds=30))
    table = table_of(window=Hopping(3 * MINUTE, MINUTE, retention=timedelta(0)), store=store, clock=clock)
    at = T0 + 2 * MINUTE

    await table.add("k", "e1", at=at)

    start = epoch_ms(T0)
    minute = 60_000
    change = store.changes[0]
    assert change.windows == (
        Span(start + minute, start + 4 * minute),
        Span(start + 2 * minute, start + 5 * minute),
    )
    assert change.read == Span(start + 2 * minute, start + 5 * minute)
    assert (change.at_ms, change.now_ms) == (epoch_ms(at), epoch_ms(clock.now))


async def test_reads_of_expired_windows_are_zero_without_asking_the_store():
    store = RecordingStore()
    clock = FakeClock(T0 + 10 * MINUTE)
    table = table_of(store=store, clock=clock)

    values = (await table.get("k", at=T0), await table.history("k", at=T0 + MINUTE, windows=3))

    assert values == (0, [0, 0, 0])
    assert store.reads == []


async def test_a_history_asks_the_store_for_its_live_windows_in_one_read():
    store = RecordingStore()
    clock = FakeClock(T0 + 2 * MINUTE)
    # At T0+2m the window [T0, T0+1m) has just expired (retention one minute); [T0+1m, T0+2m) has not.
    table = table_of(store=store, clock=clock)

    values = await table.history("k", windows=3)

    start = epoch_ms(T0)
    assert values == [0, 0, 0]
    assert store.reads == [[Span(start + 60_000, start + 120_000)]]


async def test_current_and_delta_read_the_window_now_and_some_time_ago():
    clock = FakeClock()
    table = table_of(clock=clock)
    await table.add("k", "e1", at=T0)
    await table.add("k", "e2", at=T0 + MINUTE)
    await table.add("k", "e3", at=T0 + MINUTE)
    clock.now = T0 + MINUTE

    assert await table.current("k") == 2
    assert await table.delta("k", MINUTE) == 1
    assert await table.delta("k", 2 * MINUTE) == 0

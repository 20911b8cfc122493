"""The table contract: what every ``WindowStore`` must do, seen through ``Table``.

Written once, run twice: against the in-memory store (tests/unit/tables/test_memory_store.py) and
against Redis (tests/integration/test_redis_tables.py). Each contract is an async function taking a
``WindowStore``; it names its tables uniquely and drives a ``FakeClock`` of its own, so it never depends
on what else the store holds or on the time of day.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from payments.tables.store import Change, Kind, Layout, TableSpec, WindowStore
from payments.tables.table import Applied, Table
from payments.tables.windows import Hopping, Sliding, Span, Tumbling, Window, epoch_ms

#: Midnight, a whole number of minutes (and hours, and days) after the epoch: windows start on it.
T0 = datetime(2030, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


def a_table(
    store: WindowStore, window: Window, kind: Kind = Kind.COUNT, *, clock: FakeClock | None = None
) -> tuple[Table, FakeClock]:
    clock = clock or FakeClock()
    return Table(f"t-{uuid.uuid4().hex[:10]}", window=window, kind=kind, store=store, clock=clock), clock


def every_window() -> tuple[Window, ...]:
    return (Tumbling(MINUTE), Hopping(3 * MINUTE, MINUTE), Sliding(MINUTE))


def payload(kind: Kind, n: int) -> int | str:
    """The ``value`` of the n-th event in the tables of these contracts."""
    if kind is Kind.SUM:
        return 100 * n
    if kind is Kind.DISTINCT:
        return f"member-{n % 3}"
    return 1


async def a_count_table_counts_events_per_key_and_window(store: WindowStore) -> None:
    table, clock = a_table(store, Tumbling(MINUTE, retention=10 * MINUTE))
    clock.advance(5 * MINUTE)

    first = await table.add("user-a", "e1", at=T0)
    second = await table.add("user-a", "e2", at=T0 + 59 * SECOND + 999 * MS)
    await table.add("user-a", "e3", at=T0 + MINUTE)
    await table.add("user-b", "e4", at=T0 + 10 * SECOND)

    assert first == Applied(value=1, counted=True, late=False)
    assert second == Applied(value=2, counted=True, late=False)
    assert await table.get("user-a", at=T0 + 30 * SECOND) == 2
    assert await table.get("user-a", at=T0 + MINUTE) == 1
    assert await table.get("user-b", at=T0) == 1
    assert await table.get("user-c", at=T0) == 0


async def a_sum_table_adds_integer_amounts_per_window(store: WindowStore) -> None:
    table, clock = a_table(store, Tumbling(MINUTE), Kind.SUM)
    clock.advance(MINUTE + SECOND)

    await table.add("merchant-1", "p1", at=T0, value=1999)
    await table.add("merchant-1", "p2", at=T0 + SECOND, value=1)
    applied = await table.add("merchant-1", "r1", at=T0 + 2 * SECOND, value=-500)
    await table.add("merchant-1", "p3", at=T0 + MINUTE, value=7)

    assert applied.value == 1500
    assert await table.get("merchant-1", at=T0) == 1500
    assert await table.get("merchant-1") == 7


async def a_distinct_table_counts_each_member_once(store: WindowStore) -> None:
    for window in every_window():
        table, clock = a_table(store, window, Kind.DISTINCT)
        clock.advance(10 * SECOND)

        await table.add("card-1", "e1", at=T0, value="user-1")
        await table.add("card-1", "e2", at=T0 + SECOND, value="user-2")
        applied = await table.add("card-1", "e3", at=T0 + 2 * SECOND, value="user-1")

        assert applied == Applied(value=2, counted=True, late=False), window
        assert await table.get("card-1", at=T0 + 2 * SECOND) == 2, window


async def a_read_without_a_time_means_the_window_at_the_clock(store: WindowStore) -> None:
    table, clock = a_table(store, Tumbling(MINUTE, retention=5 * MINUTE))
    clock.advance(MINUTE + 30 * SECOND)
    await table.add("k", "e1", at=T0 + 10 * SECOND)
    await table.add("k", "e2", at=T0 + 70 * SECOND)

    now = await table.get("k")
    clock.advance(MINUTE)
    after_a_minute = await table.get("k")

    assert now == 1
    assert after_a_minute == 0
    assert await table.get("k", at=T0 + 70 * SECOND) == 1
    assert await table.get("k", at=T0) == 1


async def the_same_event_id_counts_once_in_every_window_and_kind(store: WindowStore) -> None:
    for window in every_window():
        for kind in Kind:
            table, clock = a_table(store, window, kind)
            clock.advance(10 * SECOND)
            await table.add("k", "other", at=T0, value=payload(kind, 1))

            first = await table.add("k", "e1", at=T0 + SECOND, value=payload(kind, 2))
            again = await table.add("k", "e1", at=T0 + SECOND, value=payload(kind, 2))

            assert first.counted is True, (window, kind)
            assert again == Applied(value=first.value, counted=False, late=False), (window, kind)
            assert await table.get("k", at=T0 + SECOND) == first.value, (window, kind)


async def event_ids_are_independent_across_keys_and_tables(store: WindowStore) -> None:
    one, clock = a_table(store, Tumbling(MINUTE))
    other, _ = a_table(store, Tumbling(MINUTE), clock=clock)

    await one.add("key-a", "evt-1", at=T0)
    on_another_key = await one.add("key-b", "evt-1", at=T0)
    in_another_table = await other.add("key-a", "evt-1", at=T0)

    assert on_another_key.counted
    assert in_another_table.counted
    assert [await one.get("key-a"), await one.get("key-b"), await other.get("key-a")] == [1, 1, 1]


async def an_event_older_than_every_live_window_is_late_and_changes_nothing(store: WindowStore) -> None:
    for window in every_window():
        table, clock = a_table(store, window)
        clock.advance(10 * MINUTE)
        await table.add("k", "fresh", at=clock.now)
        before = await table.snapshot()

        late = await table.add("k", "old", at=T0)

        assert late == Applied(value=0, counted=False, late=True), window
        assert await table.snapshot() == before, window
        assert await table.add("k", "old", at=T0) == late, window
        assert await table.get("k", at=T0) == 0, window


async def a_late_event_still_counts_while_its_window_is_retained(store: WindowStore) -> None:
    table, clock = a_table(store, Tumbling(MINUTE, retention=MINUTE))
    # The window [T0, T0 + 1 min) expires at T0 + 2 min.
    clock.advance(2 * MINUTE - MS)

    in_time = await table.add("k", "e1", at=T0 + 30 * SECOND)
    clock.advance(MS)
    too_late = await table.add("k", "e2", at=T0 + 31 * SECOND)

    assert in_time == Applied(value=1, counted=True, late=False)
    assert too_late == Applied(value=0, counted=False, late=True)


async def a_hopping_event_goes_into_its_live_windows_only(store: WindowStore) -> None:
    table, clock = a_table(store, Hopping(3 * MINUTE, MINUTE, retention=timedelta(0)))
    # The event belongs to the windows starting at T0, T0+1m and T0+2m; the first expired at T0+3m.
    clock.advance(3 * MINUTE + 30 * SECOND)

    applied = await table.add("k", "e1", at=T0 + 2 * MINUTE + 30 * SECOND)

    assert applied == Applied(value=1, counted=True, late=False)
    assert await table.snapshot() == {"k": {epoch_ms(T0 + MINUTE): 1, epoch_ms(T0 + 2 * MINUTE): 1}}
    assert await table.history("k", at=T0 + 2 * MINUTE, windows=2) == [0, 1]


async def windows_expire_when_the_clock_passes_their_retention(store: WindowStore) -> None:
    # Every window holding an event at T0 has expired by T0 + 2 min, the one read at T0 + 1 min - 1 ms then.
    windows = (
        Tumbling(MINUTE, retention=MINUTE),
        Hopping(2 * MINUTE, MINUTE, retention=timedelta(0)),
        Sliding(MINUTE, retention=MINUTE),
    )
    for window in windows:
        table, clock = a_table(store, window)
        await table.add("k", "e1", at=T0)
        clock.advance(2 * MINUTE - MS)
        before = (await table.get("k", at=T0 + MINUTE - MS), await table.snapshot() != {})
        clock.advance(MS)
        after = (await table.get("k", at=T0 + MINUTE - MS), await table.snapshot())

        assert before == (1, True), window
        assert after == (0, {}), window


async def a_store_forgets_cells_once_their_lifetime_has_passed(store: WindowStore) -> None:
    for layout in Layout:
        name = f"t-{uuid.uuid4().hex[:10]}"
        table = TableSpec(name=name, kind=Kind.COUNT, layout=layout, lifetime_ms=60_000)
        spans = (Span(1_000, 1_010),) if layout is Layout.WINDOWS else (Span(1_000, 1_001),)
        change = Change(
            key="k", event_id="e1", at_ms=1_000, payload=1, windows=spans, read=spans[0], now_ms=1_000
        )

        added = await store.add(table, change)
        live = await store.cells(table, now_ms=60_999)
        gone = await store.cells(table, now_ms=61_000)

        assert added.value == 1, layout
        assert [cell.start_ms for cell in live["k"]] == [1_000], layout
        assert gone == {}, layout


async def a_sliding_window_holds_the_last_size_of_time_to_the_millisecond(store: WindowStore) -> None:
    table, clock = a_table(store, Sliding(10 * MINUTE))
    # Every read below is still live at T0 + 1 min (each is kept ten minutes after its time).
    clock.advance(MINUTE)
    await table.add("k", "e1", at=T0)

    reads = [await table.get("k", at=at) for at in (T0 - MS, T0, T0 + 10 * MINUTE - MS, T0 + 10 * MINUTE)]

    assert reads == [0, 1, 1, 0]


async def a_sliding_add_reports_the_value_of_the_last_size_at_the_event_time(store: WindowStore) -> None:
    table, clock = a_table(store, Sliding(10 * MINUTE))
    values = []
    for number, offset in enumerate((0 * MINUTE, MINUTE, 5 * MINUTE, 11 * MINUTE)):
        clock.now = T0 + offset
        values.append((await table.add("user-1", f"p{number}", at=T0 + offset)).value)

    # At T0+11m the event of T0+1m is exactly ten minutes old, so it is already out.
    assert values == [1, 2, 3, 2]


async def a_sliding_event_is_kept_until_the_last_window_holding_it_expires(store: WindowStore) -> None:
    table, clock = a_table(store, Sliding(10 * MINUTE, retention=MINUTE))
    # An event at T0 is in the reads up to T0+10m-1ms, and those stay readable one minute more.
    clock.advance(11 * MINUTE - MS)

    kept = await table.add("k", "e1", at=T0)
    read_late = await table.get("k", at=T0 + 10 * MINUTE - MS)
    clock.advance(MS)
    too_late = await table.add("k", "e2", at=T0)

    # The read at T0 itself expired at T0+1m+1ms: its value is 0, though the event is stored.
    assert kept == Applied(value=0, counted=True, late=False)
    assert read_late == 1
    assert too_late == Applied(value=0, counted=False, late=True)


async def history_gives_the_previous_windows_oldest_first(store: WindowStore) -> None:
    tumbling, clock = a_table(store, Tumbling(MINUTE, retention=10 * MINUTE))
    hopping, _ = a_table(store, Hopping(2 * MINUTE, MINUTE, retention=10 * MINUTE), clock=clock)
    clock.advance(5 * MINUTE)
    for table in (tumbling, hopping):
        for number, minute in enumerate((0, 1, 1, 2, 2, 2, 3)):
            await table.add("k", f"e{number}", at=T0 + minute * MINUTE)

    assert await tumbling.history("k", at=T0 + 3 * MINUTE, windows=4) == [0, 1, 2, 3]
    # At the clock (T0+5m) the two windows before the current one are [T0+3m, T0+4m) and [T0+4m, T0+5m).
    assert await tumbling.history("k", windows=2) == [1, 0]
    # Hopping windows of two minutes, one minute apart: [T0-1m, T0+1m), [T0, T0+2m), [T0+1m, T0+3m).
    assert await hopping.history("k", at=T0 + 2 * MINUTE, windows=3) == [1, 3, 5]
    assert await hopping.history("k", at=T0 + 2 * MINUTE, windows=0) == []


async def concurrent_adds_of_distinct_events_are_all_counted(store: WindowStore) -> None:
    for window in every_window():
        counts, clock = a_table(store, window)
        sums, _ = a_table(store, window, Kind.SUM, clock=clock)
        clock.advance(SECOND)

        await asyncio.gather(*(counts.add("k", f"e{n}", at=T0 + n * MS) for n in range(100)))
        await asyncio.gather(*(sums.add("k", f"e{n}", at=T0 + n * MS, value=n) for n in range(1, 101)))

        assert await counts.get("k", at=T0 + 100 * MS) == 100, window
        assert await sums.get("k", at=T0 + 100 * MS) == 5050, window


async def concurrent_adds_of_one_event_count_once(store: WindowStore) -> None:
    for window in every_window():
        table, clock = a_table(store, window, Kind.SUM)
        clock.advance(SECOND)

        results = await asyncio.gather(*(table.add("k", "e1", at=T0, value=250) for _ in range(50)))

        assert [result.counted for result in results].count(True) == 1, window
        assert {result.value for result in results} == {250}, window
        assert await table.get("k", at=T0) == 250, window


async def a_snapshot_lists_every_live_window_per_key(store: WindowStore) -> None:
    table, clock = a_table(store, Tumbling(MINUTE, retention=10 * MINUTE), Kind.SUM)
    clock.advance(3 * MINUTE)
    await table.add("a", "e1", at=T0, value=10)
    await table.add("a", "e2", at=T0 + SECOND, value=5)
    await table.add("a", "e3", at=T0 + 2 * MINUTE, value=1)
    await table.add("b", "e4", at=T0 + MINUTE, value=7)

    assert await table.snapshot() == {
        "a": {epoch_ms(T0): 15, epoch_ms(T0 + 2 * MINUTE): 1},
        "b": {epoch_ms(T0 + MINUTE): 7},
    }


async def a_sliding_snapshot_gives_the_value_at_every_time_it_changes(store: WindowStore) -> None:
    size = 10 * MINUTE
    table, clock = a_table(store, Sliding(size))
    clock.advance(2 * MINUTE)
    await table.add("k", "e1", at=T0)
    await table.add("k", "e2", at=T0 + MINUTE)

    def window_at(read_at: datetime) -> int:
        return epoch_ms(read_at - size + MS)

    # The earliest read still kept (now - retention), each event's time, and each event's time + size.
    assert await table.snapshot() == {
        "k": {
            window_at(T0 - 8 * MINUTE): 0,
            window_at(T0): 1,
            window_at(T0 + MINUTE): 2,
            window_at(T0 + size): 1,
            window_at(T0 + MINUTE + size): 0,
        }
    }


async def clear_empties_a_table_and_forgets_its_event_ids(store: WindowStore) -> None:
    for window in every_window():
        table, clock = a_table(store, window)
        neighbour, _ = a_table(store, window, clock=clock)
        await table.add("a", "e1", at=T0)
        await table.add("b", "e2", at=T0)
        await neighbour.add("a", "e1", at=T0)

        await table.clear()
        emptied = (await table.snapshot(), await table.get("a"))
        replayed = await table.add("a", "e1", at=T0)

        assert emptied == ({}, 0), window
        assert replayed == Applied(value=1, counted=True, late=False), window
        assert await neighbour.get("a") == 1, window


async def replaying_events_into_empty_tables_rebuilds_the_live_tables(store: WindowStore) -> None:
    # (event time, arrival time, key, id): some arrive late, one is redelivered, some expire before the end.
    stream = [
        (0, 0, "u1", "a"),
        (20, 25, "u1", "b"),
        (50, 60, "u2", "c"),
        (20, 70, "u1", "b"),
        (65, 90, "u1", "d"),
        (100, 130, "u1", "e"),
        (30, 140, "u2", "f"),
        (150, 150, "u2", "g"),
        (170, 200, "u1", "h"),
        (230, 230, "u1", "i"),
    ]
    windows: tuple[Window, ...] = (
        Tumbling(MINUTE, retention=30 * SECOND),
        Hopping(MINUTE, 20 * SECOND, retention=30 * SECOND),
        Sliding(MINUTE, retention=30 * SECOND),
    )
    for window in windows:
        for kind in Kind:
            live, clock = a_table(store, window, kind)
            for number, (at, arrives, key, event_id) in enumerate(stream):
                clock.now = T0 + arrives * SECOND
                await live.add(key, event_id, at=T0 + at * SECOND, value=payload(kind, number))

            rebuilt, _ = a_table(store, window, kind, clock=clock)
            await rebuilt.clear()
            for number, (at, _arrives, key, event_id) in enumerate(stream):
                await rebuilt.add(key, event_id, at=T0 + at * SECOND, value=payload(kind, number))

            expected = await live.snapshot()
            assert expected, (window, kind)
            assert await rebuilt.snapshot() == expected, (window, kind)


async def any_string_is_a_key_of_its_own(store: WindowStore) -> None:
    keys = ["2001:db8::1", "2001:db8::1:", "user:{42}*", "a%3Ab", "a:b", "ünï cöde\n", "", "[x]?"]
    for window in (Tumbling(MINUTE), Sliding(MINUTE)):
        table, _ = a_table(store, window)
        for number, key in enumerate(keys):
            for repeat in range(number + 1):
                await table.add(key, f"e{repeat}", at=T0)

        assert [await table.get(key, at=T0) for key in keys] == list(range(1, len(keys) + 1)), window
        assert set(await table.snapshot()) == set(keys), window


TABLE_CONTRACTS: tuple[Callable[[WindowStore], Awaitable[None]], ...] = (
    a_count_table_counts_events_per_key_and_window,
    a_sum_table_adds_integer_amounts_per_window,
    a_distinct_table_counts_each_member_once,
    a_read_without_a_time_means_the_window_at_the_clock,
    the_same_event_id_counts_once_in_every_window_and_kind,
    event_ids_are_independent_across_keys_and_tables,
    an_event_older_than_every_live_window_is_late_and_changes_nothing,
    a_late_event_still_counts_while_its_window_is_retained,
    a_hopping_event_goes_into_its_live_windows_only,
    windows_expire_when_the_clock_passes_their_retention,
    a_store_forgets_cells_once_their_lifetime_has_passed,
    a_sliding_window_holds_the_last_size_of_time_to_the_millisecond,
    a_sliding_add_reports_the_value_of_the_last_size_at_the_event_time,
    a_sliding_event_is_kept_until_the_last_window_holding_it_expires,
    history_gives_the_previous_windows_oldest_first,
    concurrent_adds_of_distinct_events_are_all_counted,
    concurrent_adds_of_one_event_count_once,
    a_snapshot_lists_every_live_window_per_key,
    a_sliding_snapshot_gives_the_value_at_every_time_it_changes,
    clear_empties_a_table_and_forgets_its_event_ids,
    replaying_events_into_empty_tables_rebuilds_the_live_tables,
    any_string_is_a_key_of_its_own,
)


def contract_id(contract: Callable[..., object]) -> str:
    return getattr(contract, "__name__", "contract")

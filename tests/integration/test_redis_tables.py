"""RedisWindowStore keeps the shared table contract, under ``table:{name}:...`` with clock-relative TTLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.tables import RedisWindowStore
from payments.domain.errors import DependencyUnavailable
from payments.tables.store import Kind, Layout, TableSpec
from payments.tables.table import Table
from payments.tables.windows import Hopping, Sliding, Tumbling, epoch_ms
from tests.contracts_tables import MINUTE, SECOND, T0, TABLE_CONTRACTS, FakeClock, contract_id
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def store(client: Redis, prefix: str) -> RedisWindowStore:
    return RedisWindowStore(client, key_prefix=prefix)


@pytest.mark.parametrize("contract", TABLE_CONTRACTS, ids=contract_id)
async def test_the_redis_table_store_keeps_the_contract_that(contract, store):
    await contract(store)


async def test_window_keys_follow_the_design_name_and_live_until_the_window_expires(client, prefix, store):
    clock = FakeClock(T0 + 30 * SECOND)
    table = Table(
        "failures", window=Tumbling(MINUTE, retention=10 * MINUTE), kind=Kind.COUNT, store=store, clock=clock
    )
    await table.add("merchant-1", "evt-1", at=T0)
    window = f"{prefix}table:failures:merchant-1:{epoch_ms(T0)}"

    value, ids = await client.get(window), await client.smembers(f"{window}:ids")
    ttls = [await client.pttl(window), await client.pttl(f"{window}:ids")]

    assert (value, ids) == (b"1", {b"evt-1"})
    # Expires at T0 + 1 min + 10 min, and the table's clock says T0 + 30 s.
    expected = (11 * MINUTE - 30 * SECOND) // timedelta(milliseconds=1)
    assert all(expected - 5_000 < ttl <= expected for ttl in ttls)


async def test_sliding_keys_hold_events_and_payloads_and_live_as_long_as_the_newest_event(
    client, prefix, store
):
    clock = FakeClock(T0)
    table = Table(
        "amounts", window=Sliding(10 * MINUTE, retention=MINUTE), kind=Kind.SUM, store=store, clock=clock
    )
    await table.add("user-1", "p1", at=T0 - MINUTE, value=500)
    await table.add("user-1", "p2", at=T0, value=700)
    base = f"{prefix}table:amounts:user-1"

    events = await client.zrange(f"{base}:events", 0, -1, withscores=True)
    payloads = await client.hgetall(f"{base}:payloads")
    ttl = await client.pttl(f"{base}:events")

    assert events == [(b"p1", epoch_ms(T0 - MINUTE)), (b"p2", epoch_ms(T0))]
    assert payloads == {b"p1": b"500", b"p2": b"700"}
    assert 11 * 60_000 - 5_000 < ttl <= 11 * 60_000


async def test_a_sliding_add_trims_the_events_that_have_expired(client, prefix, store):
    clock = FakeClock(T0)
    table = Table(
        "velocity", window=Sliding(MINUTE, retention=MINUTE), kind=Kind.DISTINCT, store=store, clock=clock
    )
    for n in range(5):
        await table.add("card-1", f"old-{n}", at=T0, value=f"user-{n}")

    clock.advance(2 * MINUTE)
    await table.add("card-1", "new", at=clock.now, value="user-9")

    assert await client.zrange(f"{prefix}table:velocity:card-1:events", 0, -1) == [b"new"]
    assert await client.hkeys(f"{prefix}table:velocity:card-1:payloads") == [b"new"]


async def test_keys_are_escaped_so_a_colon_in_a_key_cannot_reach_another_key(client, prefix, store):
    clock = FakeClock(T0)
    table = Table("by_ip", window=Tumbling(MINUTE), kind=Kind.COUNT, store=store, clock=clock)

    await table.add("2001:db8::1", "e1", at=T0)

    names = sorted([name async for name in client.scan_iter(match=f"{prefix}*")])
    assert names == [
        f"{prefix}table:by_ip:2001%3Adb8%3A%3A1:{epoch_ms(T0)}".encode(),
        f"{prefix}table:by_ip:2001%3Adb8%3A%3A1:{epoch_ms(T0)}:ids".encode(),
    ]


async def test_redis_forgets_an_expired_window_by_itself(client, prefix, store):
    table = Table(
        "short",
        window=Hopping(timedelta(milliseconds=200), timedelta(milliseconds=100), retention=timedelta(0)),
        kind=Kind.COUNT,
        store=store,
        clock=lambda: datetime.now(UTC),
    )
    applied = await table.add("k", "e1", at=datetime.now(UTC))

    async def nothing_left() -> bool:
        return [name async for name in client.scan_iter(match=f"{prefix}*")] == []

    assert applied.counted
    # tests/waiting.py types its probe as ``T | Awaitable[T]``, which mypy solves as Never for a coroutine.
    await eventually(nothing_left, what="Redis to expire the window keys")  # type: ignore[arg-type]


async def test_a_snapshot_reads_a_table_written_by_another_store_on_the_same_prefix(client, prefix, store):
    clock = FakeClock(T0)
    writer = Table("shared", window=Tumbling(MINUTE), kind=Kind.SUM, store=store, clock=clock)
    reader = Table(
        "shared",
        window=Tumbling(MINUTE),
        kind=Kind.SUM,
        store=RedisWindowStore(client, key_prefix=prefix),
        clock=clock,
    )

    await writer.add("k", "e1", at=T0, value=42)

    assert await reader.snapshot() == {"k": {epoch_ms(T0): 42}}


async def test_an_unreachable_redis_is_reported_as_unavailable_without_its_address():
    async with open_redis("redis://:s3cret-pass@127.0.0.1:1/0") as unreachable:
        store = RedisWindowStore(unreachable)
        spec = TableSpec(name="t", kind=Kind.COUNT, layout=Layout.WINDOWS, lifetime_ms=1_000)
        table = Table("t", window=Tumbling(MINUTE), kind=Kind.COUNT, store=store, clock=FakeClock())
        calls = (
            lambda: table.add("k", "e1", at=T0),
            lambda: table.get("k"),
            lambda: store.cells(spec, now_ms=0),
            lambda: store.clear(spec),
        )

        for call in calls:
            with pytest.raises(DependencyUnavailable) as raised:
                await call()

            assert "127.0.0.1" not in raised.value.message
            assert "s3cret" not in raised.value.message

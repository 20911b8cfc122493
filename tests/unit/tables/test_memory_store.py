"""The in-memory table store keeps the same contract as the Redis one."""

from __future__ import annotations

import pytest

from payments.tables.memory import MemoryWindowStore
from payments.tables.store import Change, Kind, Layout, TableSpec
from payments.tables.windows import Span
from tests.contracts_tables import TABLE_CONTRACTS, contract_id


@pytest.fixture
def store() -> MemoryWindowStore:
    return MemoryWindowStore()


@pytest.mark.parametrize("contract", TABLE_CONTRACTS, ids=contract_id)
async def test_the_memory_table_store_keeps_the_contract_that(contract, store):
    await contract(store)


async def test_the_memory_store_drops_expired_cells_of_a_table_on_its_next_add(store):
    table = TableSpec(name="velocity", kind=Kind.COUNT, layout=Layout.EVENTS, lifetime_ms=100)

    def change(event_id: str, at_ms: int) -> Change:
        return Change(
            key="k",
            event_id=event_id,
            at_ms=at_ms,
            payload=1,
            windows=(Span(at_ms, at_ms + 1),),
            read=None,
            now_ms=at_ms,
        )

    await store.add(table, change("old", 0))
    await store.add(table, change("new", 100))
    # Read straight from the store, below the table's own expiry filter: the old event is gone.
    values = await store.read(table, "k", [Span(0, 101)])

    assert values == [1]

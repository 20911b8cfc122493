"""The in-memory storage fakes keep the same contract as PostgreSQL, plus the fakes' own behaviour."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from payments.domain.unit_of_work import UnitOfWork
from tests.contracts_storage import (
    CONTRACT_HEADERS,
    STORAGE_CONTRACTS,
    Abort,
    StoredEvent,
    an_entry,
    an_event,
    contract_id,
    fail_after,
)
from tests.fakes.storage import InMemoryStore, in_memory_unit_of_work


class InMemoryHarness:
    def __init__(self, store: InMemoryStore) -> None:
        self.store = store

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return self.store.unit_of_work(headers=CONTRACT_HEADERS)

    async def inbox_holds(self, consumer: str, event_id: str) -> bool:
        return (consumer, event_id) in self.store.inbox_claims

    async def stored_event(self, event_id: str) -> StoredEvent | None:
        event = self.store.outbox_events.get(event_id)
        if event is None:
            return None
        return StoredEvent(event.exchange, event.routing_key, event.payload, event.headers)

    async def audit_ids(self, resource_id: str) -> list[int]:
        return [row.id for row in self.store.audit_rows if row.entry.resource_id == resource_id]

    @asynccontextmanager
    async def tampered_audit_row(self, row_id: int) -> AsyncIterator[None]:
        original = self.store.tamper_audit_row(row_id, action="edited behind the log's back")
        try:
            yield
        finally:
            self.store.restore_audit_row(original)


@pytest.mark.parametrize("contract", STORAGE_CONTRACTS, ids=contract_id)
async def test_in_memory_storage_keeps_the_contract_that(contract):
    await contract(InMemoryHarness(InMemoryStore()))


async def test_a_unit_of_work_commits_inbox_outbox_and_audit_together():
    store = InMemoryStore()
    async with in_memory_unit_of_work(store) as uow:
        await uow.inbox.claim(consumer="c", event_id="e1")
        await uow.outbox.add(an_event("e1"))
        await uow.audit.append(an_entry("pay_1"))
        assert (store.inbox_claims, store.outbox_events, store.audit_rows) == (set(), {}, [])

    assert store.inbox_claims == {("c", "e1")}
    assert list(store.outbox_events) == ["e1"]
    assert [row.entry.resource_id for row in store.audit_rows] == ["pay_1"]


async def test_a_failed_unit_of_work_releases_the_audit_chain_for_the_next_one():
    store = InMemoryStore()
    with pytest.raises(Abort):
        await fail_after(InMemoryHarness(store), lambda uow: uow.audit.append(an_entry("pay_1")))

    async with store.unit_of_work() as uow:
        await uow.audit.append(an_entry("pay_2"))

    assert not store.audit_chain_lock.locked()
    assert [row.id for row in store.audit_rows] == [2]
    assert store.audit_rows[0].prev_hash is None

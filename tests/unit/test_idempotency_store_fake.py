"""The in-memory idempotency store keeps the same contract as the Redis one."""

from __future__ import annotations

import pytest

from tests.contracts_idempotency import IDEMPOTENCY_CONTRACTS, contract_id
from tests.fakes.idempotency import InMemoryIdempotencyStore


def make_store(
    *, in_flight_ttl_seconds: float = 60, completed_ttl_seconds: float = 3600
) -> InMemoryIdempotencyStore:
    return InMemoryIdempotencyStore(
        in_flight_ttl_seconds=in_flight_ttl_seconds, completed_ttl_seconds=completed_ttl_seconds
    )


@pytest.mark.parametrize("contract", IDEMPOTENCY_CONTRACTS, ids=contract_id)
async def test_the_in_memory_idempotency_store_keeps_the_contract_that(contract):
    await contract(make_store)


async def test_the_fake_counts_an_expired_key_as_gone_on_a_controlled_clock():
    now = [100.0]
    store = InMemoryIdempotencyStore(in_flight_ttl_seconds=5, monotonic=lambda: now[0])
    await store.begin("k", "fp")

    now[0] += 4.999
    held_before = store.holds("k")
    now[0] += 0.001

    assert held_before
    assert not store.holds("k")

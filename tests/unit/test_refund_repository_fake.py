"""The in-memory refund repository keeps the same contract as PostgreSQL's."""

from __future__ import annotations

import pytest

from tests.contracts_refunds import REFUND_CONTRACTS
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", REFUND_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_in_memory_refunds_keep_the_contract_that(contract):
    store = InMemoryStore()

    await contract(store.unit_of_work)

"""The in-memory payment repository keeps the same contract as PostgreSQL's."""

from __future__ import annotations

import pytest

from tests.contracts_payments import PAYMENT_CONTRACTS
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", PAYMENT_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_in_memory_payments_keep_the_contract_that(contract):
    store = InMemoryStore()

    await contract(store.unit_of_work)

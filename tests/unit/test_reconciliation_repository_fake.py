from __future__ import annotations

import pytest

from tests.contracts_reconciliation import RECONCILIATION_CONTRACTS
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", RECONCILIATION_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_in_memory_reconciliation_repositories_keep_the_contract_that(contract):
    await contract(InMemoryStore().unit_of_work)

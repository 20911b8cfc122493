from __future__ import annotations

import pytest

from tests.contracts_emails import EMAIL_CONTRACTS
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", EMAIL_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_in_memory_email_log_keeps_the_contract_that(contract):
    await contract(InMemoryStore().unit_of_work)

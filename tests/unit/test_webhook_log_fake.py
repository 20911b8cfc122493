from __future__ import annotations

import pytest

from tests.contracts_webhook_logs import WEBHOOK_LOG_CONTRACTS
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", WEBHOOK_LOG_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_in_memory_webhook_log_keeps_the_contract_that(contract):
    await contract(InMemoryStore().unit_of_work)

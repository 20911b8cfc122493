from __future__ import annotations

from functools import partial

import pytest

from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_webhook_logs import WEBHOOK_LOG_CONTRACTS


@pytest.mark.parametrize("contract", WEBHOOK_LOG_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_postgres_webhook_log_keeps_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool))

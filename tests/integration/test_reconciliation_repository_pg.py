from __future__ import annotations

import os
from functools import partial

import pytest

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_reconciliation import RECONCILIATION_CONTRACTS

CIPHER = PiiCipher(os.urandom(32))


@pytest.mark.parametrize("contract", RECONCILIATION_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_postgres_reconciliation_repositories_keep_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))

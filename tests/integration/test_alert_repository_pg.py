from __future__ import annotations

import json
from functools import partial

import pytest

from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_alerts import ALERT_CONTRACTS, raising_publishes_the_alert_with_the_same_transaction

PUBLISHED_OF_KIND = """
SELECT payload::text FROM outbox WHERE routing_key = 'email.admin.alert' AND payload->>'kind' = $1
"""


@pytest.mark.parametrize("contract", ALERT_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_postgres_alert_repositories_keep_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool))


async def test_raising_an_alert_in_postgres_publishes_it_once(pg_pool):
    async def published_alerts(kind):
        return [json.loads(text) for (text,) in await pg_pool.fetch(PUBLISHED_OF_KIND, kind)]

    await raising_publishes_the_alert_with_the_same_transaction(
        partial(pg_unit_of_work, pg_pool), published_alerts
    )

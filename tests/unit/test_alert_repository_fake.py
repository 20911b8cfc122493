from __future__ import annotations

import json

import pytest

from payments.domain.alerts.model import ADMIN_ALERT_ROUTING_KEY
from tests.contracts_alerts import ALERT_CONTRACTS, raising_publishes_the_alert_with_the_same_transaction
from tests.fakes.storage import InMemoryStore


@pytest.mark.parametrize("contract", ALERT_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_in_memory_alert_repositories_keep_the_contract_that(contract):
    await contract(InMemoryStore().unit_of_work)


async def test_raising_an_alert_in_memory_publishes_it_once():
    store = InMemoryStore()

    async def published_alerts(kind):
        events = [e for e in store.outbox_events.values() if e.routing_key == ADMIN_ALERT_ROUTING_KEY]
        return [json.loads(json.dumps(e.payload, default=str)) for e in events if e.payload["kind"] == kind]

    await raising_publishes_the_alert_with_the_same_transaction(store.unit_of_work, published_alerts)

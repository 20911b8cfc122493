"""The in-memory webhook dedup keeps the same contract as the Redis one."""

from __future__ import annotations

import pytest

from payments.domain.errors import DependencyUnavailable
from tests.contracts_webhook_dedup import DEDUP_CONTRACTS, contract_id
from tests.fakes.webhook_dedup import InMemoryWebhookDedup


def make_dedup(
    *, pending_ttl_seconds: float = 60, confirmed_ttl_seconds: float = 3600
) -> InMemoryWebhookDedup:
    return InMemoryWebhookDedup(
        pending_ttl_seconds=pending_ttl_seconds, confirmed_ttl_seconds=confirmed_ttl_seconds
    )


@pytest.mark.parametrize("contract", DEDUP_CONTRACTS, ids=contract_id)
async def test_the_in_memory_webhook_dedup_keeps_the_contract_that(contract):
    await contract(make_dedup)


async def test_the_fake_expires_a_pending_key_exactly_at_its_deadline_on_a_controlled_clock():
    now = [100.0]
    dedup = InMemoryWebhookDedup(pending_ttl_seconds=5, monotonic=lambda: now[0])
    await dedup.claim("k")

    now[0] += 4.999
    before = dedup.state("k")
    now[0] += 0.001

    assert before == "pending"
    assert dedup.state("k") is None


async def test_the_fake_reports_an_outage_like_redis_and_changes_nothing():
    dedup = InMemoryWebhookDedup()
    await dedup.claim("k")
    dedup.unavailable = True

    for call in (dedup.claim, dedup.confirm, dedup.release):
        with pytest.raises(DependencyUnavailable):
            await call("k")

    assert dedup.state("k") == "pending"

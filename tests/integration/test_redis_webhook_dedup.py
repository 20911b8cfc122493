"""RedisWebhookDedup keeps the shared dedup contract, under ``webhook:event:{dedup_key}``."""

from __future__ import annotations

import pytest

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.webhook_dedup import RedisWebhookDedup
from payments.domain.errors import DependencyUnavailable
from tests.contracts_webhook_dedup import DEDUP_CONTRACTS, contract_id

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("contract", DEDUP_CONTRACTS, ids=contract_id)
async def test_the_redis_webhook_dedup_keeps_the_contract_that(contract, client, prefix):
    def make_dedup(
        *, pending_ttl_seconds: float = 60, confirmed_ttl_seconds: float = 3600
    ) -> RedisWebhookDedup:
        return RedisWebhookDedup(
            client,
            pending_ttl_seconds=pending_ttl_seconds,
            confirmed_ttl_seconds=confirmed_ttl_seconds,
            key_prefix=prefix,
        )

    await contract(make_dedup)


async def test_keys_follow_the_design_name_and_carry_their_retention(client, prefix):
    dedup = RedisWebhookDedup(
        client, pending_ttl_seconds=60, confirmed_ttl_seconds=604_800, key_prefix=prefix
    )
    key = f"{prefix}webhook:event:cashfree:idem:abc123"

    await dedup.claim("cashfree:idem:abc123")
    pending = (await client.get(key), await client.pttl(key))
    await dedup.confirm("cashfree:idem:abc123")
    confirmed = (await client.get(key), await client.pttl(key))

    assert pending[0] == b"pending"
    assert 0 < pending[1] <= 60_000
    assert confirmed[0] == b"confirmed"
    assert 604_000_000 < confirmed[1] <= 604_800_000


async def test_an_unreachable_redis_is_reported_as_unavailable_without_its_address():
    async with open_redis("redis://:s3cret-pass@127.0.0.1:1/0") as unreachable:
        dedup = RedisWebhookDedup(unreachable, pending_ttl_seconds=60, confirmed_ttl_seconds=600)

        for call in (dedup.claim, dedup.confirm, dedup.release):
            with pytest.raises(DependencyUnavailable) as raised:
                await call("cashfree:idem:k")

            assert "127.0.0.1" not in raised.value.message
            assert "s3cret" not in raised.value.message

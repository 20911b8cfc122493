"""RedisIdempotencyStore keeps the shared idempotency contract, under ``idempotency:payment:{key}``."""

from __future__ import annotations

import pytest

from payments.bridges.redis.client import open_redis
from payments.bridges.redis.idempotency import RedisIdempotencyStore
from payments.domain.errors import DependencyUnavailable
from tests.contracts_idempotency import CREATED, IDEMPOTENCY_CONTRACTS, contract_id

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("contract", IDEMPOTENCY_CONTRACTS, ids=contract_id)
async def test_the_redis_idempotency_store_keeps_the_contract_that(contract, client, prefix):
    def make_store(
        *, in_flight_ttl_seconds: float = 60, completed_ttl_seconds: float = 3600
    ) -> RedisIdempotencyStore:
        return RedisIdempotencyStore(
            client,
            completed_ttl_seconds=completed_ttl_seconds,
            in_flight_ttl_seconds=in_flight_ttl_seconds,
            key_prefix=prefix,
        )

    await contract(make_store)


async def test_keys_follow_the_design_name_and_carry_their_retention(client, prefix):
    store = RedisIdempotencyStore(
        client, completed_ttl_seconds=86_400, in_flight_ttl_seconds=60, key_prefix=prefix
    )

    await store.begin("abc123", "fp")
    in_flight_ttl = await client.pttl(f"{prefix}idempotency:payment:abc123")
    await store.complete("abc123", "fp", CREATED)
    completed_ttl = await client.pttl(f"{prefix}idempotency:payment:abc123")

    assert 0 < in_flight_ttl <= 60_000
    assert 86_000_000 < completed_ttl <= 86_400_000


async def test_an_unreachable_redis_is_reported_as_unavailable_without_its_address():
    async with open_redis("redis://:s3cret-pass@127.0.0.1:1/0") as unreachable:
        store = RedisIdempotencyStore(unreachable, completed_ttl_seconds=60)

        with pytest.raises(DependencyUnavailable) as raised:
            await store.begin("k", "fp")

    assert "127.0.0.1" not in raised.value.message
    assert "s3cret" not in raised.value.message

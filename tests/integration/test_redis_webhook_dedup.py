"""RedisWebhookDedup keeps the shared dedup contract, under ``webhook:event:{dedup_key}``."""

from __future__ import annotations

import asyncio

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


async def test_claims_and_confirms_asked_for_together_each_get_their_own_answer(client, prefix):
    dedup = RedisWebhookDedup(client, pending_ttl_seconds=60, confirmed_ttl_seconds=3600, key_prefix=prefix)
    held, fresh, unclaimed = "cashfree:idem:held", "cashfree:idem:fresh", "cashfree:idem:unclaimed"
    await dedup.claim(held)

    # Asked for in the same turn of the loop, these go to Redis in one pipeline.
    answers = await asyncio.gather(
        dedup.claim(held),
        dedup.claim(fresh),
        dedup.confirm(held),
        dedup.confirm(unclaimed),
        dedup.claim(fresh),
    )

    assert answers == [False, True, None, None, False]
    assert await client.get(f"{prefix}webhook:event:{held}") == b"confirmed"
    assert await client.get(f"{prefix}webhook:event:{fresh}") == b"pending"
    assert await client.exists(f"{prefix}webhook:event:{unclaimed}") == 0


async def test_a_caller_cancelled_while_waiting_leaves_the_rest_of_its_batch_answered(client, prefix):
    dedup = RedisWebhookDedup(client, pending_ttl_seconds=60, confirmed_ttl_seconds=3600, key_prefix=prefix)
    first, second = (
        asyncio.ensure_future(dedup.claim("cashfree:idem:a")),
        asyncio.ensure_future(dedup.claim("cashfree:idem:b")),
    )
    await asyncio.sleep(0)  # both have queued their SET

    first.cancel()

    assert await second is True
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_every_caller_of_a_batch_is_told_redis_is_unavailable():
    async with open_redis("redis://:s3cret-pass@127.0.0.1:1/0") as unreachable:
        dedup = RedisWebhookDedup(unreachable, pending_ttl_seconds=60, confirmed_ttl_seconds=600)

        outcomes = await asyncio.gather(
            dedup.claim("cashfree:idem:a"), dedup.confirm("cashfree:idem:b"), return_exceptions=True
        )

    assert all(isinstance(outcome, DependencyUnavailable) for outcome in outcomes)
    assert not any("127.0.0.1" in outcome.message for outcome in outcomes)


async def test_callers_queued_behind_a_flush_cancelled_before_it_ran_still_get_their_answer(client, prefix):
    dedup = RedisWebhookDedup(client, pending_ttl_seconds=60, confirmed_ttl_seconds=3600, key_prefix=prefix)
    claim = asyncio.ensure_future(dedup.claim("cashfree:idem:a"))
    await asyncio.sleep(0)  # the claim has queued its SET; the flush that sends it is due next turn
    (flush,) = (task for task in asyncio.all_tasks() if task.get_coro().__qualname__.endswith("._flush"))

    flush.cancel()

    assert await asyncio.wait_for(claim, timeout=5) is True

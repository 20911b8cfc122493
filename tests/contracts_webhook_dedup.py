"""The webhook dedup contract: what every ``WebhookDedup`` must do.

Written once, run twice: against the in-memory fake (tests/unit/test_webhook_dedup_fake.py) and
against Redis (tests/integration/test_redis_webhook_dedup.py). Each contract is an async function
taking a ``DedupFactory`` and uses fresh keys, so it never depends on what else the store holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from payments.domain.webhook.dedup import WebhookDedup
from tests.waiting import eventually


class DedupFactory(Protocol):
    def __call__(
        self, *, pending_ttl_seconds: float = 60, confirmed_ttl_seconds: float = 3600
    ) -> WebhookDedup: ...


def a_key() -> str:
    return f"cashfree:idem:{uuid.uuid4().hex}"


async def the_first_claim_of_a_key_wins_and_a_second_loses_while_it_is_pending(make: DedupFactory) -> None:
    dedup, key = make(), a_key()

    assert await dedup.claim(key) is True
    assert await dedup.claim(key) is False


async def a_confirmed_key_refuses_every_later_claim(make: DedupFactory) -> None:
    dedup, key = make(), a_key()
    await dedup.claim(key)

    await dedup.confirm(key)

    assert await dedup.claim(key) is False
    assert await dedup.claim(key) is False


async def a_released_key_can_be_claimed_again(make: DedupFactory) -> None:
    dedup, key = make(), a_key()
    await dedup.claim(key)

    await dedup.release(key)

    assert await dedup.claim(key) is True


async def releasing_a_confirmed_key_keeps_it(make: DedupFactory) -> None:
    dedup, key = make(), a_key()
    await dedup.claim(key)
    await dedup.confirm(key)

    await dedup.release(key)

    assert await dedup.claim(key) is False


async def releasing_or_confirming_a_key_nobody_claimed_stores_nothing(make: DedupFactory) -> None:
    dedup, released, confirmed = make(), a_key(), a_key()

    await dedup.release(released)
    await dedup.confirm(confirmed)

    assert await dedup.claim(released) is True
    assert await dedup.claim(confirmed) is True


async def a_pending_key_expires_by_itself(make: DedupFactory) -> None:
    dedup, key = make(pending_ttl_seconds=0.2), a_key()
    await dedup.claim(key)

    await eventually(lambda: dedup.claim(key), what="the pending key to expire")


async def a_confirmed_key_outlives_the_pending_time(make: DedupFactory) -> None:
    dedup, key, clock_key = make(pending_ttl_seconds=0.2), a_key(), a_key()
    await dedup.claim(key)
    await dedup.confirm(key)
    await dedup.claim(clock_key)

    # Once a key claimed later has expired, the pending time has certainly passed for ``key`` too.
    await eventually(lambda: dedup.claim(clock_key), what="the pending time to pass")
    assert await dedup.claim(key) is False


async def a_confirmed_key_expires_after_its_retention(make: DedupFactory) -> None:
    dedup, key = make(confirmed_ttl_seconds=0.3), a_key()
    await dedup.claim(key)
    await dedup.confirm(key)

    await eventually(lambda: dedup.claim(key), what="the confirmed key to expire")


async def of_many_concurrent_claims_of_one_key_exactly_one_wins(make: DedupFactory) -> None:
    dedup, key = make(), a_key()

    claims = await asyncio.gather(*(dedup.claim(key) for _ in range(25)))

    assert claims.count(True) == 1


async def keys_are_independent(make: DedupFactory) -> None:
    dedup, first, second = make(), a_key(), a_key()
    await dedup.claim(first)
    await dedup.confirm(first)

    assert await dedup.claim(second) is True


DEDUP_CONTRACTS: tuple[Callable[[DedupFactory], Awaitable[None]], ...] = (
    the_first_claim_of_a_key_wins_and_a_second_loses_while_it_is_pending,
    a_confirmed_key_refuses_every_later_claim,
    a_released_key_can_be_claimed_again,
    releasing_a_confirmed_key_keeps_it,
    releasing_or_confirming_a_key_nobody_claimed_stores_nothing,
    a_pending_key_expires_by_itself,
    a_confirmed_key_outlives_the_pending_time,
    a_confirmed_key_expires_after_its_retention,
    of_many_concurrent_claims_of_one_key_exactly_one_wins,
    keys_are_independent,
)


def contract_id(contract: Callable[..., object]) -> str:
    return getattr(contract, "__name__", "contract")

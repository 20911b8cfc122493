"""The idempotency contract: what every ``IdempotencyStore`` must do.

Written once, run twice: against the in-memory fake (tests/unit/test_idempotency_store_fake.py) and
against Redis (tests/integration/test_redis_idempotency.py). Each contract is an async function taking
a ``StoreFactory`` and uses fresh keys, so it never depends on what else the store holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from payments.domain.idempotency import BeginOutcome, IdempotencyStore, StoredResponse
from tests.waiting import eventually

CREATED = StoredResponse(status=201, body=b'{"paymentId":"pay_1"}', content_type="application/json")
REFUSED = StoredResponse(
    status=400, body=b'{"error":{"code":"amount_invalid"}}', content_type="application/json"
)


class StoreFactory(Protocol):
    def __call__(
        self, *, in_flight_ttl_seconds: float = 60, completed_ttl_seconds: float = 3600
    ) -> IdempotencyStore: ...


def a_key() -> str:
    return uuid.uuid4().hex


async def outcome(store: IdempotencyStore, key: str, fingerprint: str) -> BeginOutcome:
    return (await store.begin(key, fingerprint)).outcome


async def the_first_request_with_a_key_runs_and_holds_it_in_flight(make: StoreFactory) -> None:
    store, key = make(), a_key()

    assert await outcome(store, key, "fp-a") is BeginOutcome.NEW
    assert await outcome(store, key, "fp-a") is BeginOutcome.IN_FLIGHT


async def a_different_request_with_a_key_in_flight_is_a_mismatch(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")

    assert await outcome(store, key, "fp-b") is BeginOutcome.MISMATCH


async def a_completed_key_replays_the_exact_answer_for_the_same_request(make: StoreFactory) -> None:
    store, key = make(), a_key()
    binary = StoredResponse(
        status=201, body=b"\x00\xff{not utf-8}\n", content_type="application/octet-stream"
    )
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", binary)

    begun = await store.begin(key, "fp-a")

    assert begun.outcome is BeginOutcome.REPLAY
    assert begun.response == binary


async def a_completed_key_refuses_a_different_request(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", CREATED)

    begun = await store.begin(key, "fp-b")

    assert begun.outcome is BeginOutcome.MISMATCH
    assert begun.response is None


async def a_released_key_runs_the_next_request_again(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")

    await store.release(key)

    assert await outcome(store, key, "fp-a") is BeginOutcome.NEW


async def releasing_a_completed_key_keeps_its_answer(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", CREATED)

    await store.release(key)

    assert (await store.begin(key, "fp-a")).response == CREATED


async def a_completed_answer_is_never_overwritten(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", CREATED)

    await store.complete(key, "fp-a", REFUSED)
    await store.complete(key, "fp-b", REFUSED)

    assert (await store.begin(key, "fp-a")).response == CREATED


async def a_late_completion_leaves_a_key_another_request_holds(make: StoreFactory) -> None:
    store, key = make(), a_key()
    await store.begin(key, "fp-a")
    await store.release(key)
    await store.begin(key, "fp-b")

    await store.complete(key, "fp-a", CREATED)

    assert await outcome(store, key, "fp-b") is BeginOutcome.IN_FLIGHT


async def an_in_flight_key_expires_by_itself(make: StoreFactory) -> None:
    store, key = make(in_flight_ttl_seconds=0.2), a_key()
    await store.begin(key, "fp-a")

    async def free_again() -> bool:
        return await outcome(store, key, "fp-a") is BeginOutcome.NEW

    await eventually(free_again, what="the in-flight key to expire")


async def a_completed_answer_outlives_the_in_flight_time(make: StoreFactory) -> None:
    store, key, clock_key = make(in_flight_ttl_seconds=0.2), a_key(), a_key()
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", CREATED)
    await store.begin(clock_key, "fp-clock")

    async def clock_key_expired() -> bool:
        return await outcome(store, clock_key, "fp-clock") is BeginOutcome.NEW

    # Once a key begun later has expired, the in-flight time has certainly passed for ``key`` too.
    await eventually(clock_key_expired, what="the in-flight time to pass")
    assert (await store.begin(key, "fp-a")).response == CREATED


async def a_completed_answer_expires_after_its_retention(make: StoreFactory) -> None:
    store, key = make(completed_ttl_seconds=0.3), a_key()
    await store.begin(key, "fp-a")
    await store.complete(key, "fp-a", CREATED)

    async def free_again() -> bool:
        return await outcome(store, key, "fp-a") is BeginOutcome.NEW

    await eventually(free_again, what="the completed answer to expire")


async def of_many_concurrent_requests_with_one_key_exactly_one_runs(make: StoreFactory) -> None:
    store, key = make(), a_key()

    outcomes = await asyncio.gather(*(outcome(store, key, "fp-a") for _ in range(25)))

    assert outcomes.count(BeginOutcome.NEW) == 1
    assert outcomes.count(BeginOutcome.IN_FLIGHT) == 24


async def keys_are_independent(make: StoreFactory) -> None:
    store, first, second = make(), a_key(), a_key()
    await store.begin(first, "fp-a")
    await store.complete(first, "fp-a", CREATED)

    assert await outcome(store, second, "fp-a") is BeginOutcome.NEW


IDEMPOTENCY_CONTRACTS: tuple[Callable[[StoreFactory], Awaitable[None]], ...] = (
    the_first_request_with_a_key_runs_and_holds_it_in_flight,
    a_different_request_with_a_key_in_flight_is_a_mismatch,
    a_completed_key_replays_the_exact_answer_for_the_same_request,
    a_completed_key_refuses_a_different_request,
    a_released_key_runs_the_next_request_again,
    releasing_a_completed_key_keeps_its_answer,
    a_completed_answer_is_never_overwritten,
    a_late_completion_leaves_a_key_another_request_holds,
    an_in_flight_key_expires_by_itself,
    a_completed_answer_outlives_the_in_flight_time,
    a_completed_answer_expires_after_its_retention,
    of_many_concurrent_requests_with_one_key_exactly_one_runs,
    keys_are_independent,
)


def contract_id(contract: Callable[..., object]) -> str:
    return getattr(contract, "__name__", "contract")

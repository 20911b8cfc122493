"""The dead-letter contract: what browsing and re-driving a DLQ must do, whoever implements it.

Written once, run twice: against the in-memory fake (tests/unit/test_dead_letters_fake.py) and against
RabbitMQ (tests/integration/test_rabbitmq_dead_letters.py). Each contract gets a harness whose queue
is fresh and empty, with its DLQ and work queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pytest

from payments.domain.dead_letters import (
    DeadLetteredBy,
    DeadLetterNotFound,
    DeadLetters,
    RedriveInterrupted,
    UnknownDeadLetterQueue,
)

#: The headers the runtime puts on a message it dead-letters after its 5th failure.
TRACE_HEADERS: Mapping[str, str] = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "x-request-id": "req-contract",
}


def runtime_headers(queue: str, *, error: str = "RuntimeError: downstream is down") -> dict[str, Any]:
    return {
        **TRACE_HEADERS,
        "x-retry-count": 5,
        "x-first-failure-at": "2026-11-26T10:00:00+00:00",
        "x-last-error": error,
        "x-dead-letter-reason": "exhausted",
        "x-original-queue": queue,
    }


@dataclass(frozen=True)
class Moved:
    """A message as it arrived in the work queue."""

    message_id: str | None
    body: bytes
    headers: Mapping[str, Any]
    message_type: str | None


class DeadLetterHarness(Protocol):
    dead_letters: DeadLetters
    #: The work queue under test; its DLQ starts empty.
    queue: str

    async def put_dead(
        self, message_id: str, body: bytes, headers: Mapping[str, Any], message_type: str | None = None
    ) -> None:
        """Add a message at the tail of the DLQ."""
        ...

    async def take_dead(self) -> list[str | None]:
        """Remove everything from the DLQ; the message ids in queue order."""
        ...

    async def take_work(self) -> list[Moved]:
        """Remove everything that arrived in the work queue, in order."""
        ...

    async def refuse_publishes(self) -> None:
        """From now on, the broker does not confirm a publish to the work queue."""
        ...


def fresh_id() -> str:
    return uuid.uuid4().hex


async def three_dead(harness: DeadLetterHarness) -> list[str]:
    ids = [fresh_id() for _ in range(3)]
    for n, message_id in enumerate(ids):
        body = f'{{"n": {n}}}'.encode()
        await harness.put_dead(message_id, body, runtime_headers(harness.queue), "webhook.cashfree.received")
    return ids


async def browsing_shows_each_message_with_its_failure_history(harness: DeadLetterHarness) -> None:
    [first, *_] = await three_dead(harness)

    [letter, *_] = await harness.dead_letters.list(harness.queue, limit=50)

    assert letter.message_id == first
    assert letter.queue == harness.queue
    assert letter.routing_key == "webhook.cashfree.received"
    assert letter.body_preview == '{"n": 0}'
    assert letter.body_size == 8
    assert letter.failures == 5
    assert letter.first_failed_at == datetime.fromisoformat("2026-11-26T10:00:00+00:00")
    assert letter.last_error == "RuntimeError: downstream is down"
    assert letter.reason == "exhausted"
    assert letter.dead_lettered_by is DeadLetteredBy.RUNTIME
    assert letter.headers["x-original-queue"] == harness.queue
    assert letter.headers["x-retry-count"] == "5"


async def browsing_leaves_every_message_in_place_and_in_order(harness: DeadLetterHarness) -> None:
    ids = await three_dead(harness)

    first_page = await harness.dead_letters.list(harness.queue, limit=2)
    everything = await harness.dead_letters.list(harness.queue, limit=50)
    again = await harness.dead_letters.list(harness.queue, limit=50)

    assert [letter.message_id for letter in first_page] == ids[:2]
    assert [letter.message_id for letter in everything] == ids
    assert [letter.message_id for letter in again] == ids
    assert await harness.dead_letters.count(harness.queue) == 3
    assert await harness.take_dead() == ids
    assert await harness.take_work() == []


async def short_browses_after_a_long_one_keep_the_order(harness: DeadLetterHarness) -> None:
    # On a quorum queue, messages handed back are served before the rest: a browse that takes fewer
    # than were handed back last time must not rotate them.
    ids = await three_dead(harness)

    await harness.dead_letters.list(harness.queue, limit=50)
    first = await harness.dead_letters.list(harness.queue, limit=1)
    again = await harness.dead_letters.list(harness.queue, limit=1)
    await harness.dead_letters.redrive(harness.queue, message_id=ids[0])

    assert [letter.message_id for letter in (*first, *again)] == [ids[0], ids[0]]
    assert await harness.take_dead() == ids[1:]


async def a_browse_returns_only_once_its_messages_are_back(harness: DeadLetterHarness) -> None:
    # RabbitMQ takes handed-back messages back asynchronously; the next operation must still see them.
    ids = await three_dead(harness)

    for _ in range(40):
        await harness.dead_letters.list(harness.queue, limit=1)
        assert await harness.dead_letters.count(harness.queue) == 3

    assert await harness.dead_letters.redrive(harness.queue, message_id=ids[2]) == 1


async def a_body_is_previewed_as_text_up_to_two_kilobytes(harness: DeadLetterHarness) -> None:
    await harness.put_dead(fresh_id(), b"\xff" + b"a" * 5000, runtime_headers(harness.queue))

    [letter] = await harness.dead_letters.list(harness.queue, limit=1)

    assert letter.body_size == 5001
    assert letter.body_preview == "\ufffd" + "a" * 2047


async def redriving_one_message_moves_exactly_that_one_with_a_fresh_history(
    harness: DeadLetterHarness,
) -> None:
    first, second, third = await three_dead(harness)

    moved = await harness.dead_letters.redrive(harness.queue, message_id=second)

    assert moved == 1
    [arrived] = await harness.take_work()
    assert (arrived.message_id, arrived.body, arrived.message_type) == (
        second,
        b'{"n": 1}',
        "webhook.cashfree.received",
    )
    history = {"x-retry-count", "x-first-failure-at", "x-last-error", "x-dead-letter-reason", "x-death"}
    assert history.isdisjoint(arrived.headers)
    assert arrived.headers["x-redrive-count"] == 1
    assert datetime.fromisoformat(str(arrived.headers["x-redriven-at"])).tzinfo is not None
    assert {name: arrived.headers[name] for name in TRACE_HEADERS} == TRACE_HEADERS, "the trace is kept"
    assert await harness.take_dead() == [first, third], "the others stay, in order"


async def a_message_redriven_again_counts_its_redrives(harness: DeadLetterHarness) -> None:
    message_id = fresh_id()
    headers = {
        **runtime_headers(harness.queue),
        "x-redrive-count": 1,
        "x-redriven-at": "2026-11-25T00:00:00Z",
    }
    await harness.put_dead(message_id, b"{}", headers)

    await harness.dead_letters.redrive(harness.queue, message_id=message_id)

    [arrived] = await harness.take_work()
    assert arrived.headers["x-redrive-count"] == 2
    assert arrived.headers["x-redriven-at"] != "2026-11-25T00:00:00Z"


async def redriving_all_empties_the_dead_letter_queue_in_order(harness: DeadLetterHarness) -> None:
    ids = await three_dead(harness)

    moved = await harness.dead_letters.redrive(harness.queue, message_id=None)

    assert moved == 3
    assert await harness.dead_letters.count(harness.queue) == 0
    arrived = await harness.take_work()
    assert [message.message_id for message in arrived] == ids
    assert all(message.headers["x-redrive-count"] == 1 for message in arrived)


async def redriving_all_of_an_empty_queue_moves_nothing(harness: DeadLetterHarness) -> None:
    assert await harness.dead_letters.redrive(harness.queue, message_id=None) == 0
    assert await harness.take_work() == []


async def an_id_that_is_not_there_is_not_found_and_nothing_moves(harness: DeadLetterHarness) -> None:
    ids = await three_dead(harness)

    with pytest.raises(DeadLetterNotFound):
        await harness.dead_letters.redrive(harness.queue, message_id="no-such-message")

    assert await harness.take_work() == []
    assert await harness.take_dead() == ids


async def a_queue_it_does_not_know_is_not_found(harness: DeadLetterHarness) -> None:
    with pytest.raises(UnknownDeadLetterQueue):
        await harness.dead_letters.list("no.such.queue", limit=10)
    with pytest.raises(UnknownDeadLetterQueue):
        await harness.dead_letters.count("no.such.queue")
    with pytest.raises(UnknownDeadLetterQueue):
        await harness.dead_letters.redrive("no.such.queue", message_id=None)
    assert harness.queue in harness.dead_letters.queues()


async def a_message_whose_publish_is_not_confirmed_stays_in_the_dead_letter_queue(
    harness: DeadLetterHarness,
) -> None:
    ids = await three_dead(harness)
    await harness.dead_letters.list(harness.queue, limit=50)
    await harness.refuse_publishes()

    with pytest.raises(RedriveInterrupted) as one:
        await harness.dead_letters.redrive(harness.queue, message_id=ids[1])
    with pytest.raises(RedriveInterrupted) as every:
        await harness.dead_letters.redrive(harness.queue, message_id=None)

    assert (one.value.moved, every.value.moved) == (0, 0)
    assert await harness.take_dead() == ids


DEAD_LETTER_CONTRACTS: list[Callable[[DeadLetterHarness], Awaitable[None]]] = [
    browsing_shows_each_message_with_its_failure_history,
    browsing_leaves_every_message_in_place_and_in_order,
    short_browses_after_a_long_one_keep_the_order,
    a_browse_returns_only_once_its_messages_are_back,
    a_body_is_previewed_as_text_up_to_two_kilobytes,
    redriving_one_message_moves_exactly_that_one_with_a_fresh_history,
    a_message_redriven_again_counts_its_redrives,
    redriving_all_empties_the_dead_letter_queue_in_order,
    redriving_all_of_an_empty_queue_moves_nothing,
    an_id_that_is_not_there_is_not_found_and_nothing_moves,
    a_queue_it_does_not_know_is_not_found,
    a_message_whose_publish_is_not_confirmed_stays_in_the_dead_letter_queue,
]


def contract_id(contract: Callable[..., object]) -> str:
    return getattr(contract, "__name__", repr(contract))

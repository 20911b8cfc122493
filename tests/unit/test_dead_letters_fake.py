"""The in-memory ``DeadLetters`` keeps the same contract as the RabbitMQ bridge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from payments.domain.dead_letters import RedriveInterrupted
from tests.contracts_dead_letters import DEAD_LETTER_CONTRACTS, Moved, contract_id
from tests.fakes.dead_letters import InMemoryDeadLetters, QueuedMessage

QUEUE = "contract.queue"


class InMemoryHarness:
    def __init__(self) -> None:
        self.dead_letters = InMemoryDeadLetters([QUEUE, "another.queue"])
        self.queue = QUEUE

    async def put_dead(
        self, message_id: str, body: bytes, headers: Mapping[str, Any], message_type: str | None = None
    ) -> None:
        self.dead_letters.dead_letter(QUEUE, QueuedMessage(message_id, body, dict(headers), message_type))

    async def take_dead(self) -> list[str | None]:
        taken, self.dead_letters.dead[QUEUE] = self.dead_letters.dead[QUEUE], []
        return [message.message_id for message in taken]

    async def take_work(self) -> list[Moved]:
        taken, self.dead_letters.work[QUEUE] = self.dead_letters.work[QUEUE], []
        return [Moved(m.message_id, m.body, m.headers, m.message_type) for m in taken]

    async def refuse_publishes(self) -> None:
        self.dead_letters.accepts = 0


@pytest.mark.parametrize("contract", DEAD_LETTER_CONTRACTS, ids=contract_id)
async def test_the_in_memory_dead_letters_keep_the_contract_that(contract):
    await contract(InMemoryHarness())


async def test_a_redrive_all_that_the_broker_stops_confirming_reports_how_many_moved():
    harness = InMemoryHarness()
    for n in range(3):
        await harness.put_dead(f"m{n}", b"{}", {})
    harness.dead_letters.accepts = 2

    with pytest.raises(RedriveInterrupted) as stopped:
        await harness.dead_letters.redrive(QUEUE, message_id=None)

    assert stopped.value.moved == 2
    assert await harness.take_dead() == ["m2"]
    assert [moved.message_id for moved in await harness.take_work()] == ["m0", "m1"]

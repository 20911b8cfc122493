"""An in-memory ``DeadLetters``: a DLQ and a work queue per queue name, with the bridge's semantics.

Browsing leaves every message in place and in order; a re-drive moves messages, oldest first, with the
domain's own ``redrive_headers``; only queues named at construction exist; ``accepts`` makes the
"broker" stop confirming publishes, after which nothing more moves and ``RedriveInterrupted`` says how
many did. It passes the same contract as the RabbitMQ bridge (``tests/contracts_dead_letters.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from payments.domain.dead_letters import (
    DeadLetter,
    DeadLetterNotFound,
    RedriveInterrupted,
    UnknownDeadLetterQueue,
    read_dead_letter,
    redrive_headers,
)


@dataclass(frozen=True)
class QueuedMessage:
    """A message as a queue holds it."""

    message_id: str | None
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    #: Our publishers set the AMQP type to the routing key the message was first published with.
    message_type: str | None = None
    #: The key it was delivered to this queue with.
    routing_key: str = ""


class InMemoryDeadLetters:
    def __init__(self, queues: Sequence[str]) -> None:
        self.dead: dict[str, list[QueuedMessage]] = {queue: [] for queue in queues}
        self.work: dict[str, list[QueuedMessage]] = {queue: [] for queue in queues}
        #: Publishes the broker still confirms; None: all of them.
        self.accepts: int | None = None
        #: Every re-drive call, as (queue, message_id).
        self.redrive_calls: list[tuple[str, str | None]] = []

    def dead_letter(self, queue: str, message: QueuedMessage) -> None:
        """Put ``message`` at the tail of ``queue``'s DLQ (as the runtime or the broker would)."""
        self._dead(queue).append(message)

    def queues(self) -> tuple[str, ...]:
        return tuple(self.dead)

    async def count(self, queue: str) -> int:
        return len(self._dead(queue))

    async def list(self, queue: str, *, limit: int) -> list[DeadLetter]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return [_read(queue, message) for message in self._dead(queue)[:limit]]

    async def redrive(self, queue: str, *, message_id: str | None) -> int:
        dead = self._dead(queue)
        self.redrive_calls.append((queue, message_id))
        if message_id is None:
            chosen = list(dead)
        else:
            chosen = [message for message in dead if message.message_id == message_id][:1]
            if not chosen:
                raise DeadLetterNotFound(f"no message {message_id!r} in {queue}.dlq")
        for moved, message in enumerate(chosen):
            self._publish(queue, message, moved_before=moved)
            dead.remove(message)
        return len(chosen)

    def _publish(self, queue: str, message: QueuedMessage, *, moved_before: int) -> None:
        if self.accepts is not None:
            if self.accepts <= 0:
                raise RedriveInterrupted("the broker did not confirm the publish", moved=moved_before)
            self.accepts -= 1
        headers = redrive_headers(message.headers, now=datetime.now(UTC))
        self.work[queue].append(
            QueuedMessage(message.message_id, message.body, headers, message.message_type, queue)
        )

    def _dead(self, queue: str) -> list[QueuedMessage]:
        try:
            return self.dead[queue]
        except KeyError:
            raise UnknownDeadLetterQueue(f"there is no dead-letter queue for {queue!r}") from None


def _read(queue: str, message: QueuedMessage) -> DeadLetter:
    return read_dead_letter(
        queue=queue,
        message_id=message.message_id,
        routing_key=message.routing_key or f"{queue}.dlq",
        message_type=message.message_type,
        body=message.body,
        headers=message.headers,
    )

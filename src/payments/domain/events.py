"""Events leave a transaction through the outbox; consumers remember what they handled in the inbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class OutgoingEvent:
    """An event to publish once, and only if, the transaction that recorded it commits."""

    #: Globally unique; consumers deduplicate on it, so a re-publish is harmless.
    event_id: str
    #: DESIGN §3 routing key, e.g. ``payment.success``; its first word names the exchange.
    routing_key: str
    #: JSON-serialisable body.
    payload: Mapping[str, Any]
    occurred_at: datetime
    #: Extra message headers (trace ids are added by the unit of work).
    headers: Mapping[str, str] = field(default_factory=dict)


class Outbox(Protocol):
    async def add(self, event: OutgoingEvent) -> None:
        """Record an event in the current transaction; the outbox relay publishes it after commit."""
        ...

    async def add_all(self, events: Sequence[OutgoingEvent]) -> None:
        """Record several events at once, in order, as ``add`` would one by one."""
        ...


class Inbox(Protocol):
    async def claim(self, *, consumer: str, event_id: str) -> bool:
        """Record that ``consumer`` handles ``event_id`` in the current transaction.

        True the first time; False if it was already handled, in which case the caller skips its
        effects. Because the row commits with the effects, a crash before commit leaves no claim.
        """
        ...

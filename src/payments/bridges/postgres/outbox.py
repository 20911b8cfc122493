"""The transactional outbox (DESIGN §5.2): events are written with the change that caused them.

``PgOutbox`` is the write side, used inside a unit of work. ``PgOutboxRelayStore`` is the relay's side:
it claims unpublished rows with ``FOR UPDATE SKIP LOCKED`` (so several relays share the work without
publishing a row twice at once), marks them published in the same transaction, and wakes the relay
through LISTEN/NOTIFY. Delivery is at-least-once: a relay that dies after publishing but before commit
publishes again, and consumers deduplicate on ``event_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg

from payments.bridges.postgres.errors import CONNECTION_ERRORS, unavailable_on_connection_errors
from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pool import Connection
from payments.bridges.postgres.transaction import (
    connection_is_closed,
    pooled_transaction,
    unavailable_if_connection_lost,
)
from payments.domain.errors import Conflict
from payments.domain.events import OutgoingEvent
from payments.pipeline.topology import exchange_for

#: The channel the outbox trigger notifies on every committed insert (migration 0005).
OUTBOX_CHANNEL: Final = "outbox_events"

#: Record an event; no row comes back if its event_id is already there. ON CONFLICT rather than
#: catching the unique violation, because a failed statement would abort the caller's transaction.
INSERT_EVENT: Final = """
INSERT INTO outbox (event_id, exchange, routing_key, payload, headers, occurred_at)
VALUES ($1, $2, $3, $4::text::jsonb, $5::text::jsonb, $6)
ON CONFLICT (event_id) DO NOTHING
RETURNING id
"""

#: Record several events in one statement, in the order given (ids follow it); only the rows inserted
#: come back, so a missing event_id was already there.
INSERT_EVENTS: Final = """
INSERT INTO outbox (event_id, exchange, routing_key, payload, headers, occurred_at)
SELECT event_id, exchange, routing_key, payload::jsonb, headers::jsonb, occurred_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
     WITH ORDINALITY AS incoming(event_id, exchange, routing_key, payload, headers, occurred_at, position)
ORDER BY position
ON CONFLICT (event_id) DO NOTHING
RETURNING event_id
"""

#: Lock the oldest unpublished rows that no other relay holds. Order is by id within one relay only:
#: rows locked by another relay are skipped, so consumers must not rely on global order.
CLAIM_UNPUBLISHED: Final = """
SELECT id, event_id, exchange, routing_key, payload::text AS body, headers::text AS headers, occurred_at
FROM outbox
WHERE published_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

#: Mark rows published; commits with the batch that locked them.
MARK_PUBLISHED: Final = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"

#: How many events wait, and for how long the oldest has waited (a metric and an alert).
BACKLOG: Final = """
SELECT count(*) AS count,
       coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest_age_seconds
FROM outbox
WHERE published_at IS NULL
"""

#: Forget events published long enough ago that no one will ask about them again.
PRUNE_PUBLISHED: Final = "DELETE FROM outbox WHERE published_at < now() - $1::interval"

#: Upper bound on waiting for a pooled connection on the relay side.
ACQUIRE_TIMEOUT_SECONDS: Final = 10.0


class PgOutbox:
    """The ``Outbox`` on PostgreSQL: events commit or roll back with the caller's transaction."""

    def __init__(self, connection: Connection, *, default_headers: Mapping[str, str]) -> None:
        self._connection = connection
        self._default_headers = dict(default_headers)

    async def add(self, event: OutgoingEvent) -> None:
        """Record ``event`` for publishing after commit.

        Raises ``Conflict`` if an event with the same ``event_id`` was already recorded,
        ``InvalidPayload`` if the payload is not JSON-serialisable (``Decimal`` and ``datetime`` are
        written as strings) and ``UnknownRoutingKey`` if no exchange carries the routing key.
        """
        inserted = await self._connection.fetchval(INSERT_EVENT, *self._row(event))
        if inserted is None:
            raise Conflict(f"outbox already holds event {event.event_id}")

    async def add_all(self, events: Sequence[OutgoingEvent]) -> None:
        """Record ``events`` in one round trip; the same checks and errors as ``add``.

        A state change records two or three events, and the locks its transaction holds (a payment's
        row, the invoice counter) wait for every statement: one statement instead of one per event.
        """
        if len(events) < 2:
            for event in events:
                await self.add(event)
            return
        ids = [event.event_id for event in events]
        if len(set(ids)) < len(ids):  # one statement would keep the first copy silently
            raise Conflict(f"outbox events repeat an event id: {sorted(ids)}")
        rows = [self._row(event) for event in events]
        inserted = await self._connection.fetch(
            INSERT_EVENTS, *(list(column) for column in zip(*rows, strict=True))
        )
        recorded = {row["event_id"] for row in inserted}
        if missing := [event_id for event_id in ids if event_id not in recorded]:
            raise Conflict(f"outbox already holds event {missing[0]}")

    def _row(self, event: OutgoingEvent) -> tuple[str, str, str, str, str, datetime]:
        """The statement's arguments for ``event``; raises as ``add`` says before anything is sent."""
        exchange = exchange_for(event.routing_key)
        # The event's own headers win over the unit of work's defaults (trace ids, service name).
        headers = {**self._default_headers, **event.headers}
        payload = to_json(event.payload)
        return (
            event.event_id,
            exchange.value,
            event.routing_key,
            payload,
            to_json(headers),
            event.occurred_at,
        )


@dataclass(frozen=True)
class PendingEvent:
    """An unpublished outbox row, ready for the broker."""

    id: int
    event_id: str
    exchange: str
    routing_key: str
    #: The payload's JSON exactly as stored, to publish without re-encoding.
    body: bytes
    headers: dict[str, str]
    occurred_at: datetime


@dataclass(frozen=True)
class OutboxBacklog:
    """Unpublished events: how many, and the age of the oldest (0.0 when there are none)."""

    count: int
    oldest_age_seconds: float


class OutboxBatch:
    """Rows locked by one ``claim_batch``; valid only inside its ``async with`` block."""

    def __init__(self, connection: Connection, events: list[PendingEvent]) -> None:
        self._connection = connection
        self.events = events

    async def mark_published(self, ids: Sequence[int]) -> None:
        """Mark these rows published; takes effect when the batch's block exits normally."""
        if ids:
            with unavailable_if_connection_lost("outbox mark published", self._connection):
                await self._connection.execute(MARK_PUBLISHED, list(ids))


def _pending_event(row: asyncpg.Record) -> PendingEvent:
    headers = from_json(row["headers"]) or {}
    return PendingEvent(
        id=row["id"],
        event_id=row["event_id"],
        exchange=row["exchange"],
        routing_key=row["routing_key"],
        body=row["body"].encode("utf-8"),
        headers={str(key): str(value) for key, value in headers.items()},
        occurred_at=row["occurred_at"],
    )


class PgOutboxRelayStore:
    """What the outbox relay needs from PostgreSQL: claim, mark, measure, wake and prune."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def claim_batch(self, limit: int) -> AsyncIterator[OutboxBatch]:
        """Lock up to ``limit`` unpublished events in a transaction held open for the block.

        Leaving the block normally commits (``mark_published`` takes effect); an exception rolls back,
        so events whose publishing failed stay unpublished and are claimed again later.
        """
        async with pooled_transaction(self._pool, acquire_timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            with unavailable_if_connection_lost("outbox claim", connection):
                rows = await connection.fetch(CLAIM_UNPUBLISHED, limit)
            yield OutboxBatch(connection, [_pending_event(row) for row in rows])

    async def backlog(self) -> OutboxBacklog:
        """How many events wait to be published, and how long the oldest has waited."""
        with unavailable_on_connection_errors("outbox backlog"):
            row = await self._pool.fetchrow(BACKLOG)
        assert row is not None  # an aggregate without GROUP BY always returns one row
        return OutboxBacklog(count=row["count"], oldest_age_seconds=row["oldest_age_seconds"])

    async def prune_published(self, older_than: timedelta) -> int:
        """Delete events published more than ``older_than`` ago; returns how many were deleted."""
        with unavailable_on_connection_errors("outbox prune"):
            status = await self._pool.execute(PRUNE_PUBLISHED, older_than)
        return int(status.rsplit(" ", 1)[-1])

    @asynccontextmanager
    async def notifications(self) -> AsyncIterator[asyncio.Event]:
        """Hold a connection LISTENing on ``OUTBOX_CHANNEL``; yield an event set on every notification.

        The event starts set, because rows committed before LISTEN began sent their notification to
        no one: the relay's first wait returns at once and drains them. The relay clears the event
        when it wakes. The event is also set if the connection dies, so the relay wakes, drains, and
        can re-enter; it should still poll on a timeout, since a lost connection loses notifications.
        """
        wake = asyncio.Event()
        wake.set()

        def on_notify(_connection: object, _pid: int, _channel: str, _payload: object) -> None:
            wake.set()

        def on_terminate(_connection: object) -> None:
            wake.set()

        with unavailable_on_connection_errors("outbox listen"):
            connection = await self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS)
        try:
            connection.add_termination_listener(on_terminate)
            with unavailable_on_connection_errors("outbox listen"):
                await connection.add_listener(OUTBOX_CHANNEL, on_notify)
            yield wake
        finally:
            try:
                # A lost connection has nothing left to unsubscribe (and the pool has detached it).
                if not connection_is_closed(connection):
                    connection.remove_termination_listener(on_terminate)
                    # A server shutting down may leave the connection mid-operation but not yet closed:
                    # UNLISTEN then fails with an interface or internal client error ("another operation
                    # is in progress"). The pool resets or drops the connection on release anyway.
                    with suppress(*CONNECTION_ERRORS, asyncpg.InterfaceError, asyncpg.InternalClientError):
                        await connection.remove_listener(OUTBOX_CHANNEL, on_notify)
            finally:
                # Whatever happened above: a connection never released would hang the pool's close.
                await self._pool.release(connection)

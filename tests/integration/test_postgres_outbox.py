"""The relay's side of the outbox: claim with SKIP LOCKED, mark published, measure, wake, prune."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from payments.bridges.postgres.outbox import OUTBOX_CHANNEL, PgOutboxRelayStore
from payments.bridges.postgres.pool import check_database
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.events import OutgoingEvent

pytestmark = pytest.mark.integration

#: Large enough that every unpublished row of this test database fits in one batch.
EVERYTHING = 10_000
#: Backdate one of our rows so the backlog has a known minimum age.
BACKDATE = "UPDATE outbox SET created_at = now() - $2::interval WHERE event_id = $1"
#: Pretend one of our rows was published long ago.
PUBLISHED_LONG_AGO = "UPDATE outbox SET published_at = now() - $2::interval WHERE event_id = $1"
ROW_EXISTS = "SELECT EXISTS (SELECT 1 FROM outbox WHERE event_id = $1)"
#: The backend of this database that is waiting for notifications on the outbox channel.
LISTENER_PID = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND query = 'LISTEN "outbox_events"' AND pid <> pg_backend_pid()
"""
TERMINATE_AND_WAIT = "SELECT pg_terminate_backend($1, 5000)"


class Abort(Exception):
    pass


def run_id() -> str:
    return uuid.uuid4().hex


async def record(pool, event_ids: list[str], *, headers=None, commit: bool = True) -> None:
    try:
        async with pg_unit_of_work(pool, headers={"traceparent": "00-trace"}) as uow:
            for event_id in event_ids:
                await uow.outbox.add(
                    OutgoingEvent(
                        event_id=event_id,
                        routing_key="payment.created",
                        payload={"payment_id": event_id, "amount": "10.00"},
                        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                        headers=headers or {},
                    )
                )
            if not commit:
                raise Abort
    except Abort:
        pass


async def publish(store: PgOutboxRelayStore, event_ids: list[str]) -> None:
    """Mark these events published, as the relay would after broker confirms."""
    async with store.claim_batch(EVERYTHING) as batch:
        await batch.mark_published([e.id for e in batch.events if e.event_id in event_ids])


async def unpublished_ids(store: PgOutboxRelayStore) -> set[str]:
    async with store.claim_batch(EVERYTHING) as batch:
        return {event.event_id for event in batch.events}


async def test_a_batch_lists_committed_events_ready_to_publish_and_never_rolled_back_ones(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    committed, rolled_back = [f"{run}-c{i}" for i in range(3)], [f"{run}-r{i}" for i in range(3)]
    await record(pg_pool, committed, headers={"x-request-id": "req-9"})
    await record(pg_pool, rolled_back, commit=False)

    async with store.claim_batch(EVERYTHING) as batch:
        ours = [event for event in batch.events if event.event_id.startswith(run)]

    assert [event.event_id for event in ours] == committed
    first = ours[0]
    assert (first.exchange, first.routing_key) == ("payment.exchange", "payment.created")
    assert json.loads(first.body) == {"payment_id": committed[0], "amount": "10.00"}
    assert first.headers == {"traceparent": "00-trace", "x-request-id": "req-9"}
    assert first.occurred_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert [event.id for event in ours] == sorted(event.id for event in ours)


async def test_concurrent_batches_get_disjoint_rows(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    ours = {f"{run}-{i}" for i in range(10)}
    await record(pg_pool, sorted(ours))

    async with store.claim_batch(5) as first, store.claim_batch(EVERYTHING) as second:
        first_ids = {event.id for event in first.events}
        second_ids = {event.id for event in second.events}
        seen = {event.event_id for event in [*first.events, *second.events]}

    assert len(first_ids) == 5
    assert first_ids.isdisjoint(second_ids)
    assert ours <= seen


async def test_published_events_are_not_claimed_again(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    published, pending = [f"{run}-p{i}" for i in range(3)], [f"{run}-q{i}" for i in range(2)]
    await record(pg_pool, published + pending)

    await publish(store, published)

    remaining = {event_id for event_id in await unpublished_ids(store) if event_id.startswith(run)}
    assert remaining == set(pending)


async def test_marks_made_in_a_batch_that_fails_are_rolled_back(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    await record(pg_pool, [f"{run}-0"])

    async def mark_then_fail() -> None:
        async with store.claim_batch(EVERYTHING) as batch:
            await batch.mark_published([e.id for e in batch.events if e.event_id.startswith(run)])
            raise Abort

    with pytest.raises(Abort):
        await mark_then_fail()

    assert f"{run}-0" in await unpublished_ids(store)


async def test_the_backlog_counts_waiting_events_and_the_age_of_the_oldest(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    before = await store.backlog()
    await record(pg_pool, [f"{run}-{i}" for i in range(3)])
    await pg_pool.execute(BACKDATE, f"{run}-0", timedelta(hours=2))

    after = await store.backlog()
    await publish(store, [f"{run}-{i}" for i in range(3)])
    drained = await store.backlog()

    assert after.count - before.count == 3
    assert after.oldest_age_seconds >= 2 * 3600
    assert drained.count == before.count
    assert drained.oldest_age_seconds < 2 * 3600


async def test_a_committed_event_wakes_the_listener(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    async with store.notifications() as wake:
        assert wake.is_set(), "starts set so the relay drains rows committed before LISTEN"
        wake.clear()
        await record(pg_pool, [f"{run_id()}-0"])
        await asyncio.wait_for(wake.wait(), timeout=10)

    assert OUTBOX_CHANNEL == "outbox_events"


async def test_losing_the_listening_connection_wakes_the_relay_and_still_exits_cleanly(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    async with store.notifications() as wake:
        wake.clear()
        listener_pid = await pg_pool.fetchval(LISTENER_PID)
        assert await pg_pool.fetchval(TERMINATE_AND_WAIT, listener_pid)
        await asyncio.wait_for(wake.wait(), timeout=10)

    # The pool replaced the lost connection: the bridge keeps working.
    assert (await check_database(pg_pool))["status"] == "ok"


async def test_listening_ends_cleanly_and_returns_the_connection(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    async with store.notifications():
        idle_while_listening = pg_pool.get_idle_size()

    assert pg_pool.get_idle_size() == idle_while_listening + 1


async def test_pruning_deletes_only_events_published_longer_ago_than_asked(pg_pool):
    store = PgOutboxRelayStore(pg_pool)
    run = run_id()
    old, recent, unpublished = f"{run}-old", f"{run}-recent", f"{run}-unpublished"
    await record(pg_pool, [old, recent, unpublished])
    await publish(store, [old, recent])
    await pg_pool.execute(PUBLISHED_LONG_AGO, old, timedelta(days=30))

    deleted = await store.prune_published(timedelta(days=7))

    assert deleted >= 1
    assert [await pg_pool.fetchval(ROW_EXISTS, e) for e in (old, recent, unpublished)] == [False, True, True]

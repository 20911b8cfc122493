"""Every committed outbox event reaches the broker, none from a rolled-back transaction, even across a
broker restart in the middle of the run."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime

import pytest

from payments.bridges.postgres.outbox import PgOutboxRelayStore
from payments.bridges.rabbitmq.topology import declare_topology
from payments.domain.events import OutgoingEvent
from payments.pipeline import bootstrap
from payments.pipeline.outbox_relay import OutboxRelay
from payments.pipeline.settings import load_settings
from payments.pipeline.topology import WORK_QUEUES, Exchange
from tests.waiting import eventually

ROUTING_KEY = "analytics.webhook.failure"


class RolledBack(Exception):
    pass


@pytest.fixture
async def resources(migrated_dsn, amqp_url, redis_url):
    settings = load_settings(
        {
            "DATABASE_URL": migrated_dsn,
            "RABBITMQ_URL": amqp_url,
            "REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
        }
    )
    async with bootstrap.open_resources(settings, process="outbox-test") as opened:
        channel = await opened.amqp.channel()
        await declare_topology(channel, WORK_QUEUES)
        await channel.close()
        yield opened


async def record(resources, *, commit: bool, run: str) -> str:
    event_id = f"{run}-{uuid.uuid4().hex}"
    event = OutgoingEvent(
        event_id=event_id, routing_key=ROUTING_KEY, payload={"run": run}, occurred_at=datetime.now(UTC)
    )
    try:
        async with bootstrap.unit_of_work_factory(resources)() as uow:
            await uow.outbox.add(event)
            if not commit:
                raise RolledBack
    except RolledBack:
        pass
    return event_id


class Collector:
    """A durable quorum queue bound to the routing key; remembers every message id it receives."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def start(self, resources, run: str) -> None:
        channel = await resources.amqp.channel()
        queue = await channel.declare_queue(
            f"it.outbox.{run}", durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(Exchange.ANALYTICS.value, ROUTING_KEY)

        async def on_message(message) -> None:
            if message.message_id.startswith(run):
                self.ids.add(message.message_id)
            await message.ack()

        await queue.consume(on_message)


def restart_broker() -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True, timeout=120)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True, timeout=120)


async def test_committed_events_are_all_delivered_and_rolled_back_ones_never_even_across_a_broker_restart(
    resources,
):
    run = uuid.uuid4().hex[:8]
    collector = Collector()
    await collector.start(resources, run)
    relay = OutboxRelay(
        PgOutboxRelayStore(resources.pool),
        resources.publisher,
        batch_size=20,
        poll_seconds=0.5,
        metrics=resources.metrics,
    )
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))

    committed = [await record(resources, commit=True, run=run) for _ in range(40)]
    rolled_back = [await record(resources, commit=False, run=run) for _ in range(10)]
    await eventually(lambda: set(committed) <= collector.ids, timeout=30, what="the first 40 events")

    # Keep committing (and rolling back) while the broker goes down and comes back.
    restart = asyncio.create_task(asyncio.to_thread(restart_broker))
    while not restart.done():
        committed.append(await record(resources, commit=True, run=run))
        rolled_back.append(await record(resources, commit=False, run=run))
        await asyncio.sleep(0.05)  # paces the writes across the restart; nothing waits on it
    await restart
    committed += [await record(resources, commit=True, run=run) for _ in range(20)]

    await eventually(lambda: set(committed) <= collector.ids, timeout=90, what="every committed event")
    stop.set()
    await asyncio.wait_for(relay_task, timeout=15)

    assert collector.ids.isdisjoint(rolled_back)
    assert collector.ids == set(committed)
    unpublished = await resources.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id LIKE $1 AND published_at IS NULL", f"{run}-%"
    )
    assert unpublished == 0

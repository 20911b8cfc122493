"""Browsing and re-driving dead-letter queues on the real RabbitMQ, and re-drive with the real runtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.dead_letters import RabbitDeadLetters
from payments.bridges.rabbitmq.inspection import queue_depths
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import declare_topology
from payments.domain.dead_letters import DeadLetteredBy
from payments.domain.errors import DependencyUnavailable
from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import load_settings
from payments.pipeline.stream import Event, Stream
from payments.pipeline.topology import DELIVERY_LIMIT, QueueSpec
from tests.contracts_dead_letters import DEAD_LETTER_CONTRACTS, Moved, contract_id
from tests.integration.rabbitmq_support import spec_queues_deleted, unique
from tests.waiting import eventually

pytestmark = pytest.mark.integration

PUBLISH_TIMEOUT = 5.0


@pytest.fixture
async def spec(channel: AbstractChannel) -> AsyncIterator[QueueSpec]:
    spec = QueueSpec(unique("it.dlq"))
    await declare_topology(channel, [spec])
    yield spec
    await spec_queues_deleted(channel, spec)


@pytest.fixture
async def publisher(connection: AbstractRobustConnection) -> AsyncIterator[RabbitPublisher]:
    channel = await connection.channel(publisher_confirms=True)
    yield RabbitPublisher(channel, timeout=PUBLISH_TIMEOUT)
    await channel.close()


class RabbitHarness:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        spec: QueueSpec,
        publisher: RabbitPublisher,
    ) -> None:
        self.dead_letters = RabbitDeadLetters(connection, queues=[spec], publish_timeout=PUBLISH_TIMEOUT)
        self.queue = spec.name
        self.spec = spec
        self.channel = channel
        self.publisher = publisher

    async def put_dead(
        self, message_id: str, body: bytes, headers: Mapping[str, Any], message_type: str | None = None
    ) -> None:
        await self.publisher.publish(
            exchange="",
            routing_key=self.spec.dead_letter_queue,
            body=body,
            message_id=message_id,
            headers=headers,
            message_type=message_type,
        )

    async def take_dead(self) -> list[str | None]:
        return [message.message_id for message in await self._drain(self.spec.dead_letter_queue)]

    async def take_work(self) -> list[Moved]:
        return [
            Moved(message.message_id, message.body, dict(message.headers), message.type)
            for message in await self._drain(self.spec.name)
        ]

    async def refuse_publishes(self) -> None:
        # With no work queue the default exchange cannot route the publish: the broker returns it.
        await self.channel.queue_delete(self.spec.name)

    async def _drain(self, name: str) -> list[Any]:
        queue = await self.channel.declare_queue(name, passive=True)
        taken = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            await message.ack()
            taken.append(message)
        return taken


@pytest.fixture
def harness(connection, channel, spec, publisher) -> RabbitHarness:
    return RabbitHarness(connection, channel, spec, publisher)


async def depth(connection: AbstractRobustConnection, name: str) -> int:
    [queue] = await queue_depths(connection, [name])
    return queue.messages


@pytest.mark.parametrize("contract", DEAD_LETTER_CONTRACTS, ids=contract_id)
async def test_rabbitmq_dead_letters_keep_the_contract_that(contract, harness):
    await contract(harness)


async def test_a_message_the_broker_dead_lettered_at_the_delivery_limit_is_listed_as_the_brokers(
    harness, connection, channel, spec, publisher
):
    message_id = uuid.uuid4().hex
    await publisher.publish(
        exchange="", routing_key=spec.name, body=b"{}", message_id=message_id, message_type="payment.created"
    )
    work_queue = await channel.declare_queue(spec.name, passive=True)
    # A crash loop, cheaply: take it and hand it back until the broker's delivery limit dead-letters it.
    for _ in range(DELIVERY_LIMIT + 1):
        message = await work_queue.get(no_ack=False, fail=False)
        if message is None:
            break
        await message.reject(requeue=True)
    await eventually(lambda: depth(connection, spec.dead_letter_queue), what="the message in the DLQ")

    [letter] = await harness.dead_letters.list(spec.name, limit=10)

    assert letter.message_id == message_id
    assert letter.dead_lettered_by is DeadLetteredBy.BROKER
    assert letter.reason == "delivery_limit"
    assert letter.routing_key == "payment.created"
    assert letter.first_failed_at is not None, "the broker's x-death time"
    assert await harness.dead_letters.redrive(spec.name, message_id=message_id) == 1
    [arrived] = await harness.take_work()
    assert "x-death" not in arrived.headers
    assert "x-first-death-reason" not in arrived.headers


async def test_a_dead_letter_queue_that_was_never_declared_is_a_dependency_problem(connection):
    undeclared = QueueSpec(unique("it.undeclared"))
    dead_letters = RabbitDeadLetters(connection, queues=[undeclared], publish_timeout=PUBLISH_TIMEOUT)

    with pytest.raises(DependencyUnavailable, match="payments topology"):
        await dead_letters.list(undeclared.name, limit=10)


async def test_a_closed_connection_is_a_dependency_problem_whose_message_has_no_password(amqp_url, spec):
    async with open_connection(amqp_url, name="closed-soon") as connection:
        dead_letters = RabbitDeadLetters(connection, queues=[spec], publish_timeout=PUBLISH_TIMEOUT)
    password = "guest"

    with pytest.raises(DependencyUnavailable) as refused:
        await dead_letters.count(spec.name)

    assert password not in refused.value.message


# --- with the real runtime: a failing agent, the DLQ, the fix, the re-drive --------------------------


@pytest.fixture
async def resources(migrated_dsn, amqp_url, redis_url):
    environ = {
        "APP_ENV": "test",
        "DATABASE_URL": migrated_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "RETRY_DELAY_SCALE": "0.001",
        "WORKER_METRICS_PORT": "0",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "LOG_LEVEL": "WARNING",
    }
    async with bootstrap.open_resources(load_settings(environ), process="test") as opened:
        yield opened


async def test_a_message_that_exhausted_its_retries_completes_once_redriven_after_the_fault_clears(resources):
    spec = QueueSpec(unique("it.redrive"))
    setup = await resources.amqp.channel()
    await declare_topology(setup, [spec])
    fault = {"active": True}
    handled: list[Event[dict]] = []
    flow = Blueprint("redrive")

    @flow.agent(spec, value_type=dict)
    async def flaky(stream: Stream[dict], ctx: AgentContext) -> None:
        async for event in stream:
            if fault["active"]:
                raise RuntimeError("the gateway is down")
            handled.append(event)

    stop = asyncio.Event()
    worker = asyncio.create_task(bootstrap.build_worker(resources, App((flow,))).run(stop))
    try:
        message_id = uuid.uuid4().hex
        await resources.publisher.publish(
            exchange="", routing_key=spec.name, body=b'{"order": "o-1"}', message_id=message_id
        )
        await eventually(
            lambda: depth(resources.amqp, spec.dead_letter_queue), timeout=30, what="the message in the DLQ"
        )
        dead_letters = RabbitDeadLetters(resources.amqp, queues=[spec], publish_timeout=PUBLISH_TIMEOUT)
        [letter] = await dead_letters.list(spec.name, limit=10)
        assert (letter.message_id, letter.failures, letter.reason) == (message_id, 5, "exhausted")
        assert letter.last_error == "RuntimeError: the gateway is down"

        fault["active"] = False
        assert await dead_letters.redrive(spec.name, message_id=message_id) == 1
        await eventually(lambda: handled, what="the re-driven message handled")
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=15)
        await spec_queues_deleted(setup, spec)
        await setup.close()

    [event] = handled
    assert (event.event_id, event.value, event.failures) == (message_id, {"order": "o-1"}, 0)
    assert event.headers["x-redrive-count"] == 1
    assert await depth(resources.amqp, spec.dead_letter_queue) == 0

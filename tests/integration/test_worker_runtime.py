"""The agent engine against the real RabbitMQ, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

import pytest

from payments.bridges.rabbitmq.inspection import queue_depths
from payments.bridges.rabbitmq.topology import declare_topology
from payments.domain.errors import IllegalTransition
from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.runtime import DEAD_LETTER_REASON_HEADER, FIRST_FAILURE_HEADER, LAST_ERROR_HEADER
from payments.pipeline.settings import load_settings
from payments.pipeline.stream import FAILURES_HEADER, Stream
from payments.pipeline.topology import QueueSpec
from tests.waiting import eventually


@pytest.fixture
def environ(migrated_dsn, amqp_url, redis_url):
    return {
        "APP_ENV": "test",
        "DATABASE_URL": migrated_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "RETRY_DELAY_SCALE": "0.001",
        "WORKER_METRICS_PORT": "0",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
async def resources(environ):
    async with bootstrap.open_resources(load_settings(environ), process="test") as opened:
        yield opened


async def declared(resources, name: str) -> QueueSpec:
    spec = QueueSpec(f"it.{name}.{uuid.uuid4().hex[:8]}")
    channel = await resources.amqp.channel()
    await declare_topology(channel, [spec])
    await channel.close()
    return spec


async def publish_to(resources, spec: QueueSpec, body: bytes = b"{}", message_id: str | None = None) -> str:
    message_id = message_id or uuid.uuid4().hex
    await resources.publisher.publish(exchange="", routing_key=spec.name, body=body, message_id=message_id)
    return message_id


async def depth(resources, name: str) -> int:
    [queue] = await queue_depths(resources.amqp, [name])
    return queue.messages


async def take_one(resources, name: str):
    channel = await resources.amqp.channel()
    queue = await channel.declare_queue(name, passive=True)
    message = await queue.get(fail=False)
    assert message is not None, f"{name} is empty"
    await message.ack()
    await channel.close()
    return message


class RunningWorker:
    def __init__(self, resources, blueprint: Blueprint):
        self.stop = asyncio.Event()
        worker = bootstrap.build_worker(resources, App((blueprint,)))
        self.task = asyncio.create_task(worker.run(self.stop))

    async def shutdown(self):
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=15)


async def test_a_failing_message_walks_the_four_retry_tiers_then_lands_in_the_dead_letter_queue(resources):
    spec = await declared(resources, "tiers")
    attempts: list[int] = []
    flow = Blueprint("tiers")

    @flow.agent(spec, value_type=dict)
    async def always_fails(stream: Stream[dict], ctx: AgentContext) -> None:
        async for event in stream:
            attempts.append(event.failures)
            raise RuntimeError("downstream is down")

    worker = RunningWorker(resources, flow)
    message_id = await publish_to(resources, spec, b'{"n": 1}')
    await eventually(
        lambda: depth(resources, spec.dead_letter_queue), timeout=30, what="the message in the DLQ"
    )
    await worker.shutdown()

    assert attempts == [0, 1, 2, 3, 4], "one delivery per tier, counting failures so far"
    dead = await take_one(resources, spec.dead_letter_queue)
    assert dead.message_id == message_id
    assert dead.body == b'{"n": 1}'
    assert dead.headers[FAILURES_HEADER] == 5
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "exhausted"
    assert dead.headers[LAST_ERROR_HEADER] == "RuntimeError: downstream is down"
    assert FIRST_FAILURE_HEADER in dead.headers
    assert await depth(resources, spec.name) == 0
    assert all([await depth(resources, retry) == 0 for retry in spec.retry_queues])


async def test_an_error_retrying_cannot_fix_goes_straight_to_the_dead_letter_queue(resources):
    spec = await declared(resources, "reject")
    attempts = 0
    flow = Blueprint("reject")

    @flow.agent(spec, value_type=dict)
    async def refuses(stream: Stream[dict], ctx: AgentContext) -> None:
        nonlocal attempts
        async for _ in stream:
            attempts += 1
            raise IllegalTransition("SUCCESS -> CREATED")

    worker = RunningWorker(resources, flow)
    await publish_to(resources, spec)
    await eventually(
        lambda: depth(resources, spec.dead_letter_queue), timeout=15, what="the message in the DLQ"
    )
    await worker.shutdown()

    assert attempts == 1
    dead = await take_one(resources, spec.dead_letter_queue)
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "illegal_transition"
    assert dead.headers[FAILURES_HEADER] == 1


async def test_a_message_that_does_not_validate_is_dead_lettered_without_reaching_the_agent(resources):
    spec = await declared(resources, "invalid")
    seen = []
    flow = Blueprint("invalid")

    @flow.agent(spec, value_type=dict)
    async def collects(stream: Stream[dict], ctx: AgentContext) -> None:
        async for event in stream:
            seen.append(event.value)

    worker = RunningWorker(resources, flow)
    await publish_to(resources, spec, b"not json")
    await publish_to(resources, spec, b'{"ok": true}')
    await eventually(lambda: seen, what="the valid message")
    await eventually(lambda: depth(resources, spec.dead_letter_queue), what="the invalid one in the DLQ")
    await worker.shutdown()

    assert seen == [{"ok": True}]
    dead = await take_one(resources, spec.dead_letter_queue)
    assert dead.body == b"not json"
    assert dead.headers[DEAD_LETTER_REASON_HEADER] == "invalid_payload"


# --- separate processes: a real crash and a real SIGTERM -------------------------------------------


@pytest.fixture
async def effect_tables(resources):
    await resources.pool.execute(
        "CREATE TABLE IF NOT EXISTS it_deliveries (event_id text NOT NULL, pid int NOT NULL);"
        "CREATE TABLE IF NOT EXISTS it_effects (event_id text NOT NULL, pid int NOT NULL)"
    )


async def start_worker(environ, queue: str, mode: str) -> asyncio.subprocess.Process:
    env = {**os.environ, **environ, "TEST_QUEUE": queue, "TEST_MODE": mode}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.worker_script", env=env
    )


async def rows(resources, table: str, event_id: str) -> list[int]:
    records = await resources.pool.fetch(f"SELECT pid FROM {table} WHERE event_id = $1", event_id)
    return [record["pid"] for record in records]


async def test_a_worker_killed_mid_message_leaves_it_redelivered_and_processed_once(
    resources, environ, effect_tables
):
    spec = await declared(resources, "crash")
    first = await start_worker(environ, spec.name, "hang")
    event_id = await publish_to(resources, spec)
    await eventually(lambda: rows(resources, "it_effects", event_id), timeout=30, what="the first effect")

    first.kill()  # SIGKILL: no shutdown, no ack
    await first.wait()
    second = await start_worker(environ, spec.name, "normal")
    await eventually(
        lambda: _len_at_least(rows(resources, "it_deliveries", event_id), 2),
        timeout=30,
        what="the redelivery",
    )
    await eventually(lambda: _is_zero(depth(resources, spec.name)), what="the queue to drain")
    second.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.wait(), timeout=30) == 0

    deliveries = await rows(resources, "it_deliveries", event_id)
    assert deliveries == [first.pid, second.pid]
    assert await rows(resources, "it_effects", event_id) == [first.pid], "the effect happened exactly once"


async def test_sigterm_lets_the_message_in_hand_finish_and_be_acked(resources, environ, effect_tables):
    spec = await declared(resources, "sigterm")
    worker = await start_worker(environ, spec.name, "slow")
    event_id = await publish_to(resources, spec)
    await eventually(
        lambda: rows(resources, "it_deliveries", event_id), timeout=30, what="the message in hand"
    )

    worker.send_signal(signal.SIGTERM)

    assert await asyncio.wait_for(worker.wait(), timeout=30) == 0
    assert await rows(resources, "it_effects", event_id) == [worker.pid]
    assert await depth(resources, spec.name) == 0, "the message was not acked before the worker left"


async def _len_at_least(rows_awaitable, n: int) -> bool:
    return len(await rows_awaitable) >= n


async def _is_zero(depth_awaitable) -> bool:
    return await depth_awaitable == 0

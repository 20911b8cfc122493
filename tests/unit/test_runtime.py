"""The agent runtime with behavioural fakes: acknowledgement, supervision, retry tiers and DLQ."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from payments.domain.clock import SystemClock
from payments.domain.errors import IllegalTransition
from payments.pipeline import metrics as metrics_module
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.publishing import PUBLISHED_AT_HEADER
from payments.pipeline.runtime import (
    DEAD_LETTER_REASON_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_ERROR_HEADER,
    FailureRouter,
    supervise_agent,
)
from payments.pipeline.stream import FAILURES_HEADER, Stream
from payments.pipeline.topology import QueueSpec
from tests.fakes.broker import FakeConsumer, FakeMessage, RecordingPublisher
from tests.fakes.context import fake_context
from tests.waiting import eventually

QUEUE = QueueSpec("unit.work")


class Order(BaseModel):
    order_id: str
    amount: str


def order(order_id: str, *, message_id: str | None = None, headers=None) -> FakeMessage:
    body = json.dumps({"order_id": order_id, "amount": "10.00"}).encode()
    return FakeMessage(body=body, message_id=message_id or f"msg-{order_id}", headers=headers or {})


@asynccontextmanager
async def no_unit_of_work():
    raise AssertionError("these agents do not touch storage")
    yield


@pytest.fixture
def metrics():
    return metrics_module.create(CollectorRegistry())


@pytest.fixture
def context(metrics):
    return fake_context(unit_of_work=no_unit_of_work, clock=SystemClock(), metrics=metrics)


class Harness:
    """Runs one agent instance over a fake consumer until the test stops it."""

    def __init__(self, agent, consumer: FakeConsumer, context, metrics, publisher=None):
        self.blueprint = Blueprint("unit")
        self.blueprint.agent(QUEUE, value_type=Order)(agent)
        self.spec = self.blueprint.agents[0]
        self.consumer = consumer
        self.publisher = publisher or RecordingPublisher()
        self.metrics = metrics
        self.stop = asyncio.Event()
        router = FailureRouter(
            self.publisher, queue=QUEUE, agent=self.spec.name, delay_scale=0.001, metrics=metrics
        )
        self.task = asyncio.create_task(
            supervise_agent(
                self.spec, context=context, consumer=consumer, router=router, metrics=metrics, stop=self.stop
            )
        )

    async def shutdown(self):
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=5)

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.__dict__[name].labels(**labels)._value.get()


async def test_a_message_is_acked_only_after_the_agent_moves_on_to_the_next(context, metrics):
    first, second = order("o1"), order("o2")
    seen: list[str] = []
    release = asyncio.Event()

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for event in stream:
            seen.append(event.value.order_id)
            await release.wait()

    harness = Harness(agent, FakeConsumer(first, second), context, metrics)
    await eventually(lambda: seen == ["o1"], what="the first message to reach the agent")
    assert first.settled is None, "acked while the agent was still working on it"

    release.set()
    await eventually(lambda: first.settled == "acked", what="the first message to be acked")
    await harness.shutdown()

    assert seen == ["o1", "o2"]
    assert second.settled == "acked"
    assert harness.consumer.closed


async def test_the_event_carries_its_id_value_and_failure_count(context, metrics):
    events = []

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for event in stream:
            events.append(event)

    harness = Harness(agent, FakeConsumer(order("o1", headers={FAILURES_HEADER: 2})), context, metrics)
    await eventually(lambda: events, what="an event")
    await harness.shutdown()

    assert events[0].event_id == "msg-o1"
    assert events[0].value == Order(order_id="o1", amount="10.00")
    assert events[0].failures == 2


async def test_a_failing_message_goes_to_its_first_retry_tier_and_the_agent_carries_on(context, metrics):
    failing, healthy = order("bad"), order("good")
    handled: list[str] = []

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for event in stream:
            if event.value.order_id == "bad":
                raise RuntimeError("gateway exploded")
            handled.append(event.value.order_id)

    harness = Harness(agent, FakeConsumer(failing, healthy), context, metrics)
    await eventually(
        lambda: handled == ["good"], what="the agent to be restarted and handle the next message"
    )
    await harness.shutdown()

    [moved] = harness.publisher.published
    assert moved.exchange == ""
    assert moved.routing_key == "unit.work.retry.30s"
    assert moved.expiration_seconds == pytest.approx(0.03)
    assert moved.body == failing.body
    assert moved.message_id == "msg-bad"
    assert moved.headers[FAILURES_HEADER] == 1
    assert moved.headers[LAST_ERROR_HEADER] == "RuntimeError: gateway exploded"
    assert FIRST_FAILURE_HEADER in moved.headers
    assert failing.settled == "acked"
    assert healthy.settled == "acked"
    assert harness.count("retries", queue="unit.work", tier="30s") == 1
    assert harness.count("agent_restarts", agent="unit.agent") == 1


async def test_the_fifth_failure_sends_the_message_to_the_dead_letter_queue(context, metrics):
    first_failure = "2026-01-01T00:00:00+00:00"
    tired = order("o1", headers={FAILURES_HEADER: 4, FIRST_FAILURE_HEADER: first_failure, "x-death": [{}]})

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for _ in stream:
            raise RuntimeError("still broken")

    harness = Harness(agent, FakeConsumer(tired), context, metrics)
    await eventually(lambda: harness.publisher.published, what="the message to be moved")
    await harness.shutdown()

    [moved] = harness.publisher.published
    assert moved.routing_key == "unit.work.dlq"
    assert moved.expiration_seconds is None
    assert moved.headers[FAILURES_HEADER] == 5
    assert moved.headers[FIRST_FAILURE_HEADER] == first_failure
    assert moved.headers[DEAD_LETTER_REASON_HEADER] == "exhausted"
    assert "x-death" not in moved.headers
    assert harness.count("dead_letters", queue="unit.work", reason="exhausted") == 1


async def test_an_error_retrying_cannot_fix_goes_straight_to_the_dead_letter_queue(context, metrics):
    message = order("o1")

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for _ in stream:
            raise IllegalTransition("SUCCESS -> CREATED")

    harness = Harness(agent, FakeConsumer(message), context, metrics)
    await eventually(lambda: harness.publisher.published, what="the message to be moved")
    await harness.shutdown()

    [moved] = harness.publisher.published
    assert moved.routing_key == "unit.work.dlq"
    assert moved.headers[DEAD_LETTER_REASON_HEADER] == "illegal_transition"
    assert moved.headers[FAILURES_HEADER] == 1


async def test_a_message_that_does_not_validate_never_reaches_the_agent(context, metrics):
    garbage = FakeMessage(body=b'{"order_id": 5}', message_id="garbage")
    missing_id = FakeMessage(body=b'{"order_id": "o", "amount": "1"}', message_id=None)
    seen = []

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for event in stream:
            seen.append(event)

    harness = Harness(agent, FakeConsumer(garbage, missing_id, order("o1")), context, metrics)
    await eventually(lambda: seen, what="the valid message")
    await harness.shutdown()

    assert [event.value.order_id for event in seen] == ["o1"]
    reasons = [(p.message_id, p.headers[DEAD_LETTER_REASON_HEADER]) for p in harness.publisher.published]
    assert reasons == [("garbage", "invalid_payload"), ("", "missing_message_id")]
    assert garbage.settled == "acked"
    assert missing_id.settled == "acked"


async def test_a_failed_message_that_cannot_be_moved_is_returned_to_its_queue(context, metrics):
    message = order("o1")
    publisher = RecordingPublisher()
    publisher.fail_next = 1

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for _ in stream:
            raise RuntimeError("boom")

    harness = Harness(agent, FakeConsumer(message), context, metrics, publisher)
    await eventually(lambda: message.settled, what="the message to be settled")
    await harness.shutdown()

    assert message.settled == "requeued"
    assert publisher.published == []


async def test_stopping_lets_the_agent_finish_its_message_and_acks_it(context, metrics):
    message = order("o1")
    started, finish = asyncio.Event(), asyncio.Event()

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for _ in stream:
            started.set()
            await finish.wait()

    harness = Harness(agent, FakeConsumer(message), context, metrics)
    await asyncio.wait_for(started.wait(), timeout=5)
    harness.stop.set()
    finish.set()
    await asyncio.wait_for(harness.task, timeout=5)

    assert message.settled == "acked"
    assert harness.count("agent_restarts", agent="unit.agent") == 0
    assert harness.count("agent_messages", agent="unit.agent", outcome="ok") == 1


async def test_an_agent_that_raises_outside_a_message_is_restarted(context, metrics):
    calls = 0

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("set-up failed")
        async for _ in stream:
            pass

    harness = Harness(agent, FakeConsumer(order("o1")), context, metrics)
    await eventually(lambda: calls == 2, what="a restart")
    await harness.shutdown()

    assert harness.publisher.published == []
    assert harness.count("agent_restarts", agent="unit.agent") == 1


async def test_lag_is_observed_from_first_publication_for_first_deliveries_only(context, metrics):
    published_at = time.time() - 2.0
    fresh = order("o1", headers={PUBLISHED_AT_HEADER: published_at})
    retried = order("o2", headers={PUBLISHED_AT_HEADER: published_at - 600, FAILURES_HEADER: 1})
    unstamped = order("o3")

    async def agent(stream: Stream[Order], ctx: AgentContext) -> None:
        async for _event in stream:
            pass

    harness = Harness(agent, FakeConsumer(fresh, retried, unstamped), context, metrics)
    await eventually(lambda: unstamped.settled == "acked", what="all three messages acked")
    await harness.shutdown()

    lag = metrics.agent_lag.labels("unit.agent")
    assert lag._sum.get() >= 2.0
    assert lag._sum.get() < 600, "a retried message's wait in its tier was counted as lag"
    observed = sum(bucket.get() for bucket in lag._buckets)
    assert observed == 1

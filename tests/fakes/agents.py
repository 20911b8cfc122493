"""Running one agent over fake messages, as the worker would, until every message is settled."""

from __future__ import annotations

import asyncio
from typing import Any

from payments.pipeline.blueprint import AgentSpec
from payments.pipeline.context import AgentContext
from payments.pipeline.runtime import FailureRouter, supervise_agent
from tests.fakes.broker import FakeConsumer, FakeMessage, RecordingPublisher
from tests.waiting import eventually


async def run_until_settled(
    spec: AgentSpec[Any], context: AgentContext, *messages: FakeMessage
) -> RecordingPublisher:
    """Supervise ``spec`` over ``messages`` until each is acked or routed; returns what it re-published."""
    publisher = RecordingPublisher()
    stop = asyncio.Event()
    router = FailureRouter(
        publisher, queue=spec.queue, agent=spec.name, delay_scale=0.001, metrics=context.metrics
    )
    task = asyncio.create_task(
        supervise_agent(
            spec,
            context=context,
            consumer=FakeConsumer(*messages),
            router=router,
            metrics=context.metrics,
            stop=stop,
        )
    )
    await eventually(lambda: all(m.settled for m in messages), what=f"every message to {spec.name} settled")
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    return publisher

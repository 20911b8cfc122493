"""A worker process for the crash and shutdown tests: one agent with a visible, idempotent effect.

Run as ``python -m tests.integration.worker_script`` with the service URLs in the environment and
``TEST_QUEUE`` naming the work queue. Every delivery is recorded in ``it_deliveries`` (its own
transaction, so a crash cannot undo it); the effect in ``it_effects`` is guarded by the inbox and
commits with it. ``TEST_MODE=hang`` blocks after the effect committed and before the ack: the test
kills the process there. ``TEST_MODE=slow`` takes a second per message, so a SIGTERM lands mid-message.
"""

from __future__ import annotations

import asyncio
import os
import sys

from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Stream
from payments.pipeline.topology import QueueSpec

QUEUE = QueueSpec(os.environ["TEST_QUEUE"])
MODE = os.environ.get("TEST_MODE", "normal")

flow = Blueprint("it")


@flow.agent(QUEUE, value_type=dict)
async def record_effects(stream: Stream[dict], ctx: AgentContext) -> None:
    """Record each delivery, and the effect once per event id."""
    async for event in stream:
        async with ctx.unit_of_work() as uow:
            await uow.connection.execute(  # type: ignore[attr-defined]
                "INSERT INTO it_deliveries (event_id, pid) VALUES ($1, $2)", event.event_id, os.getpid()
            )
        async with ctx.unit_of_work() as uow:
            if await uow.inbox.claim(consumer="it.record_effects", event_id=event.event_id):
                await uow.connection.execute(  # type: ignore[attr-defined]
                    "INSERT INTO it_effects (event_id, pid) VALUES ($1, $2)", event.event_id, os.getpid()
                )
        if MODE == "hang":
            await asyncio.Event().wait()  # never acked: the test kills us here
        if MODE == "slow":
            await asyncio.sleep(1.0)  # simulated work, long enough for a SIGTERM to arrive mid-message


def main() -> int:
    settings = bootstrap.configure(os.environ)
    asyncio.run(bootstrap.run_worker(settings, app=App((flow,))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chaos (issue 13 §3): one fault in the middle of a flood, then the ledger must be whole.

Each test runs the service as real processes with two workers (``conftest.py``), starts the common
flood (``flood.py``), injects its fault once some journeys have finished and while the rest are under
way, lets the flood finish (clients retry as real ones do), waits until the system is at rest and
checks the common ledger (``ledger.py``): every webhook answered 200 applied exactly once in effect,
every payment and refund as the sandbox has it, no refund over its payment, an empty outbox, empty
DLQs. The faults:

- RabbitMQ stopped and started (``rabbitmqctl stop_app`` / ``start_app``): the API and ingest answer
  503 meanwhile (the sandbox's refund webhooks are made due during the outage, so Cashfree's resend
  is part of it), and clients and the sandbox send again;
- one of the two workers SIGKILLed: its unacknowledged messages go to the other, which carries the
  flood alone while a replacement starts (as a supervisor would start it) and joins;
- PostgreSQL restarted (a fast shutdown: sessions cut, open transactions rolled back);
- the processes' Redis database flushed: idempotency keys, webhook dedup keys, locks and leases gone.

Every restart helper brings the service back within a deadline, whatever happened in between. Each
test has a short form (``make test``) and a long one, marked slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import pytest
from redis.asyncio import Redis

from tests.chaos.conftest import REDIS_URL, SECOND_WORKER, Chaos
from tests.chaos.flood import LATER, Flood
from tests.chaos.ledger import check_ledger, quiesce, sandbox_deliveries, worker_metric
from tests.e2e.isolation import rabbitmqctl
from tests.e2e.recovery_support import restart_postgres, start_broker
from tests.waiting import eventually


@dataclass(frozen=True)
class Scale:
    """How big a flood is, and when its fault comes."""

    #: Journeys in the flood (flood.PLANS in turn), and how many run at once.
    journeys: int
    concurrency: int
    #: The fault comes once this many journeys have finished: traffic of every kind is under way.
    cue: int


SCALES: Final = [
    pytest.param(Scale(journeys=70, concurrency=10, cue=14), id="short"),
    pytest.param(
        Scale(journeys=210, concurrency=16, cue=60),
        id="long",
        marks=[pytest.mark.slow, pytest.mark.timeout(600)],
    ),
]
#: How long an outage may take to reach a client, and the whole service to be back.
OUTAGE_DEADLINE_SECONDS: Final = 30.0
RECOVERY_DEADLINE_SECONDS: Final = 90.0
#: Sandbox seconds after which it finishes an ordinary refund (sandbox/refunds.py REFUND_DELAY), plus one.
REFUND_DUE_SECONDS: Final = 61

Fault = Callable[[Chaos, Flood], Awaitable[None]]


async def flood_through(chaos: Chaos, scale: Scale, fault: Fault) -> Flood:
    """Run the flood, inject ``fault`` mid-way, and return the flood once it ended and all is at rest."""
    flood = Flood(chaos.service, chaos.tap, count=scale.journeys, concurrency=scale.concurrency)
    async with flood.connected():
        running = asyncio.create_task(flood.run())
        try:
            await chaos.service.within(
                lambda: _true(running.done() or flood.finished >= scale.cue),
                timeout=RECOVERY_DEADLINE_SECONDS,
                what=f"{scale.cue} journeys done",
            )
            if running.done():
                await running  # raises the flood's own failure, if it failed
                raise AssertionError("the flood ended before the fault")
            await fault(chaos, flood)
            await running
        finally:
            if not running.done():
                running.cancel()
        await quiesce(chaos.service, chaos.dsn, flood)
    return flood


@pytest.mark.parametrize("scale", SCALES)
async def test_a_broker_restart_mid_flood_leaves_the_ledger_whole(chaos, scale):
    async def restart_broker(chaos: Chaos, flood: Flood) -> None:
        # A refund the sandbox finishes later is pending: its webhook is what the outage will meet.
        await eventually(lambda: _later_refunds(flood), timeout=OUTAGE_DEADLINE_SECONDS, what="a refund")
        try:
            await asyncio.to_thread(rabbitmqctl, "stop_app")
            await eventually(
                lambda: any(a.status == 503 for a in flood.answers),
                timeout=OUTAGE_DEADLINE_SECONDS,
                what="the API to answer 503 during the outage",
            )
            await sandbox_deliveries(chaos.service, advance=REFUND_DUE_SECONDS)
            await eventually(
                lambda: any(d.status != 200 for d in flood.tap.deliveries),
                timeout=OUTAGE_DEADLINE_SECONDS,
                what="ingest to refuse one of the sandbox's webhooks during the outage",
            )
        finally:
            await start_broker()

    flood = await flood_through(chaos, scale, restart_broker)

    await check_ledger(chaos.service, chaos.dsn, flood)


@pytest.mark.parametrize("scale", SCALES)
async def test_a_worker_killed_mid_flood_leaves_the_ledger_whole(chaos, scale):
    async def kill_a_worker(chaos: Chaos, flood: Flood) -> None:
        service = chaos.service
        # The victim was doing its share of the work: its agents had handled messages.
        assert await worker_metric(service.worker_ports[SECOND_WORKER], "payments_agent_messages_total") > 0
        service.kill(SECOND_WORKER)
        assert service.live_workers == ["worker"]
        # Started again at once, as systemd or Kubernetes would; the other worker carries on meanwhile.
        service.start_again(SECOND_WORKER)
        await service.ready(timeout=RECOVERY_DEADLINE_SECONDS)

    flood = await flood_through(chaos, scale, kill_a_worker)

    await check_ledger(chaos.service, chaos.dsn, flood)


@pytest.mark.parametrize("scale", SCALES)
async def test_a_postgres_restart_mid_flood_leaves_the_ledger_whole(chaos, scale):
    async def restart(chaos: Chaos, flood: Flood) -> None:
        await restart_postgres(deadline_seconds=RECOVERY_DEADLINE_SECONDS)

    flood = await flood_through(chaos, scale, restart)

    await check_ledger(chaos.service, chaos.dsn, flood)


@pytest.mark.parametrize("scale", SCALES)
async def test_flushing_redis_mid_flood_leaves_the_ledger_whole(chaos, scale):
    async def flush(chaos: Chaos, flood: Flood) -> None:
        redis = Redis.from_url(REDIS_URL)
        try:
            # There was something to lose: idempotency keys, dedup keys, locks, leases, tables.
            assert await redis.dbsize() > 0
            await redis.flushdb()
        finally:
            await redis.aclose()

    flood = await flood_through(chaos, scale, flush)

    await check_ledger(chaos.service, chaos.dsn, flood)


def _later_refunds(flood: Flood) -> bool:
    """Whether a refund the sandbox finishes only later has been accepted."""
    return any(
        journey.refunds
        for journey in flood.journeys
        if any(reason == LATER for round_ in journey.plan.refunds for _, reason in round_)
    )


async def _true(value: bool) -> bool:
    return value

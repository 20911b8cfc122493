"""Queue overload (issue 13 §2): webhooks pile up while no worker runs, then one worker process starts
on the backlog.

The backlog goes through the real ingest (``bootstrap.web_app``: signature, dedup, publisher confirms)
into a vhost of the test's own where nothing consumes, so the broker's counts are the test's alone.
The events are the sandbox's own webhooks for real attempts of real payments (made with the e2e
stack, on its own vhost), each delivered under an ``x-idempotency-key`` of its own so that every
message is a distinct event to process. Then ``payments worker`` starts as a real process.

It proves that the whole backlog was queued (each queue that takes webhooks holds exactly the
deliveries answered 200); that it drains (every work, retry and dead-letter queue at 0 within a
deadline); that no message was lost (one ``webhook_logs`` row per message, each ended in SUCCESS,
and every payment in the state its attempts call for); and that the worker's memory stays bounded
while it drains (``_assert_memory_bounded``).
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from payments.pipeline import bootstrap
from payments.pipeline.settings import load_settings
from payments.pipeline.topology import EVENT_LOG_STREAM, RECONCILIATION_SETTLEMENTS, WEBHOOKS_RECEIVED
from tests.e2e.isolation import own_vhost
from tests.e2e.recovery_support import log_states, succeeded
from tests.e2e.stack import APP_ID, SECRET, Stack
from tests.service_processes import ServicePorts, service_environment, service_process
from tests.stress.conftest import STRESS_REDIS_URL
from tests.stress.support import (
    Webhook,
    attempt_plan,
    concurrently,
    expected,
    forms,
    with_attempts,
)
from tests.waiting import eventually

#: The agents that consume ``webhook.cashfree.received``, by queue, and their concurrency
#: (``agents/webhooks.py``, ``agents/reconciliation.py``): one consumer each, with the worker's prefetch.
WEBHOOK_CONSUMERS = {WEBHOOKS_RECEIVED.name: 8, RECONCILIATION_SETTLEMENTS.name: 2}
#: The worker's prefetch (``RABBITMQ_PREFETCH``, the settings' default, set for the worker explicitly).
PREFETCH = 16
#: Messages the worker can hold unacknowledged at once, on the queues the backlog is in.
IN_FLIGHT = PREFETCH * sum(WEBHOOK_CONSUMERS.values())
#: Webhooks processed before the memory baseline is taken: every consumer's window filled twice over.
WARM_UP = 2 * IN_FLIGHT
#: How far the worker's RSS may rise past its warmed-up baseline: 16 KiB for each message it can hold,
#: several times a message's own size, for its frames, its parsed form, the gateway's answers and its
#: rows while it is handled.
MEMORY_MARGIN = IN_FLIGHT * 16 * 1024
#: The broker refreshes a quorum queue's counts on a tick of a few seconds; asking more often only
#: costs CPU (each ``rabbitmqctl`` starts an Erlang VM) that the worker needs.
BROKER_LOOK_SECONDS = 5.0


@dataclass(frozen=True)
class Backlog:
    messages: int
    payments: int
    #: Deliveries in flight at once while the backlog is built.
    connections: int = 40
    drain_seconds: float = 120.0


@dataclass(frozen=True)
class Servers:
    """pytest-aiohttp's and pytest-asyncio's factories, for the ingest app and the worker's ports."""

    aiohttp_server: Any
    aiohttp_client: Any
    unused_port: Callable[[], int]


@pytest.fixture
def servers(aiohttp_server, aiohttp_client, unused_tcp_port_factory) -> Servers:
    return Servers(aiohttp_server, aiohttp_client, unused_tcp_port_factory)


@pytest.mark.parametrize(
    "backlog",
    forms(
        Backlog(messages=3_000, payments=100),
        Backlog(messages=50_000, payments=1_000, drain_seconds=1_500.0),
        short_timeout=240,
    ),
)
async def test_a_backlog_queued_without_workers_drains_completely_in_bounded_memory(
    stack: Stack, stress_environ: dict[str, str], servers: Servers, tmp_path: Path, backlog: Backlog
) -> None:
    rng = random.Random(50_000)
    payments, events = await with_attempts(stack, [attempt_plan(rng) for _ in range(backlog.payments)])
    run = uuid.uuid4().hex[:8]
    messages = [Webhook(rng.choice(events).body, f"backlog-{run}-{n}") for n in range(backlog.messages)]

    with own_vhost("stress-backlog") as backlog_url:
        async with _ingest(stack, stress_environ, backlog_url, servers) as ingest:
            statuses = await concurrently(
                [lambda m=m: _deliver(stack, ingest, m) for m in messages], limit=backlog.connections
            )
        assert Counter(statuses) == {200: len(messages)}
        queued: dict[str, QueueState] = await eventually(
            lambda: _holding(backlog_url, len(messages)), timeout=30, interval=1.0, what="the backlog counted"
        )
        assert {name: state.messages for name, state in queued.items() if state.messages} == dict.fromkeys(
            WEBHOOK_CONSUMERS, len(messages)
        ), "every delivery answered 200 is queued, once for each agent that consumes it"

        environ = service_environment(
            dsn=stack.settings.postgres.url.get_secret_value(),
            amqp_url=backlog_url,
            redis_url=STRESS_REDIS_URL,
            ports=ServicePorts.free(servers.unused_port),
            cashfree_app_id=APP_ID,
            cashfree_secret=SECRET,
            CASHFREE_BASE_URL=stack.settings.cashfree.base_url,
            SMTP_URL=stack.mail.url,
            # The bound below is computed from it: named here, not left to whatever the environment says.
            RABBITMQ_PREFETCH=str(PREFETCH),
        )
        with service_process(("worker",), environ, tmp_path / "worker.log") as worker:
            drain = Drain(stack, backlog_url, worker, [m.event_id for m in messages], RssSamples(worker.pid))
            async with drain.sampling():
                await eventually(
                    drain.finished,
                    timeout=backlog.drain_seconds,
                    interval=1.0,
                    what=f"the backlog of {len(messages)} webhooks to drain",
                )

    states = await log_states(stack, drain.event_ids)
    assert {state: n for state, n in states.items() if n} == {"SUCCESS": len(messages)}, "no message lost"
    rows = await stack.rows(
        "SELECT order_id, status FROM payments WHERE payment_id = ANY($1)", [p["paymentId"] for p in payments]
    )
    assert len(rows) == len(payments)
    assert {row["order_id"]: row["status"] for row in rows} == {
        row["order_id"]: expected(stack, row["order_id"]) for row in rows
    }
    # Ingest publishes each delivery's body in base64 (with its headers): 4/3 of the body at least.
    _assert_memory_bounded(drain, message_bytes=min(len(m.body) for m in messages) * 4 // 3)


def _assert_memory_bounded(drain: Drain, *, message_bytes: int) -> None:
    """The worker holds at most its prefetch windows of messages, and its memory does not grow with the
    messages it handles.

    The broker never had more than a prefetch window per consumer unacknowledged. The RSS baseline is
    taken once the worker has processed ``WARM_UP`` webhooks (every consumer has filled its window and
    every code path has run); from there its peak stays within ``MEMORY_MARGIN``. A worker that kept
    anything of each message it handled (a read-ahead of the backlog, a leak) would grow by at least
    the bytes of the messages processed after the baseline, and the test checks that this is more than
    the margin, so the bound can fail.
    """
    for queue, consumers in WEBHOOK_CONSUMERS.items():
        assert drain.most_unacknowledged[queue] <= consumers * PREFETCH, drain.most_unacknowledged
    assert drain.baseline_at is not None, "the worker was seen draining"
    after = drain.memory.samples[drain.baseline_at :]
    growth, baseline = max(after) - after[0], after[0]
    kept_if_leaking = (len(drain.event_ids) - drain.handled_at_baseline) * message_bytes
    assert kept_if_leaking > MEMORY_MARGIN, "a worker keeping what it handled would break the bound"
    assert growth <= MEMORY_MARGIN, (
        f"RSS grew {growth / 2**20:.1f} MiB past {baseline / 2**20:.1f} MiB: {drain.memory.summary()}"
    )


@asynccontextmanager
async def _ingest(
    stack: Stack, environ: dict[str, str], amqp_url: str, servers: Servers
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The product's web app on ``amqp_url`` (its topology declared), with the stack's database, Redis
    and sandbox."""
    settings = load_settings(
        {
            **environ,
            "RABBITMQ_URL": amqp_url,
            "CASHFREE_BASE_URL": stack.settings.cashfree.base_url,
            "CASHFREE_APP_ID": APP_ID,
            "CASHFREE_SECRET_KEY": SECRET,
        }
    )
    await bootstrap.run_topology(settings)
    async with bootstrap.open_resources(settings, process="stress-ingest") as resources:
        yield await servers.aiohttp_client(await servers.aiohttp_server(bootstrap.web_app(resources)))


async def _deliver(stack: Stack, ingest: TestClient[web.Request, web.Application], message: Webhook) -> int:
    headers = stack.signed(message.body, idempotency_key=message.key)
    response = await ingest.post("/api/v1/webhooks/cashfree", data=message.body, headers=headers)
    await response.read()
    return int(response.status)


@dataclass(frozen=True)
class QueueState:
    messages: int  #: ready and unacknowledged
    unacknowledged: int  #: delivered to a consumer, not acknowledged yet


def queue_states(amqp_url: str) -> dict[str, QueueState]:
    """Every queue of the vhost as the broker counts it, but the event log stream (it keeps everything)."""
    vhost = unquote(urlsplit(amqp_url).path.lstrip("/"))
    columns = ["name", "messages", "messages_unacknowledged"]
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, *columns, "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = [line.split() for line in listing.splitlines() if line.strip()]
    states = {name: QueueState(int(messages), int(unacked)) for name, messages, unacked in rows}
    states.pop(EVENT_LOG_STREAM, None)
    return states


async def _holding(amqp_url: str, backlog: int) -> dict[str, QueueState] | None:
    states = await asyncio.to_thread(queue_states, amqp_url)
    return states if all(states[queue].messages >= backlog for queue in WEBHOOK_CONSUMERS) else None


@dataclass
class RssSamples:
    """The resident set size of a process, sampled from ``/proc/<pid>/status`` while it works."""

    pid: int
    samples: list[int] = field(default_factory=list)

    def read(self) -> int | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        [kilobytes] = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(kilobytes) * 1024

    async def sample(self, every: float = 0.05) -> None:
        while True:
            rss = self.read()
            if rss is not None:
                self.samples.append(rss)
            await asyncio.sleep(every)  # the sampling period, not a wait for anything

    def summary(self) -> dict[str, Any]:
        mb = [s / 2**20 for s in self.samples]
        step = max(1, len(mb) // 40)
        return {"n": len(mb), "peak": max(mb), "curve": [round(m, 1) for m in mb[::step]]}


@dataclass
class Drain:
    """Watches the worker drain the backlog: the webhooks it processed (PostgreSQL), the queues as the
    broker counts them, its RSS."""

    stack: Stack
    amqp_url: str
    worker: subprocess.Popen[bytes]
    event_ids: list[str]
    memory: RssSamples
    #: The RSS sample taken when the worker had processed ``WARM_UP`` webhooks, and how many it had.
    baseline_at: int | None = None
    handled_at_baseline: int = 0
    most_unacknowledged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WEBHOOK_CONSUMERS, 0))
    broker_seen_at: float = 0.0

    async def finished(self) -> bool:
        assert self.worker.poll() is None, "the worker process exited"
        handled = await succeeded(self.stack, self.event_ids)
        if self.baseline_at is None and handled >= WARM_UP and self.memory.samples:
            self.baseline_at, self.handled_at_baseline = len(self.memory.samples) - 1, handled
        if handled < len(self.event_ids) and time.monotonic() - self.broker_seen_at < BROKER_LOOK_SECONDS:
            return False
        self.broker_seen_at = time.monotonic()
        states = await asyncio.to_thread(queue_states, self.amqp_url)
        for queue in WEBHOOK_CONSUMERS:
            self.most_unacknowledged[queue] = max(
                self.most_unacknowledged[queue], states[queue].unacknowledged
            )
        return handled == len(self.event_ids) and not any(state.messages for state in states.values())

    @asynccontextmanager
    async def sampling(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.memory.sample())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

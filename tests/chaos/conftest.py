"""The service under chaos: real processes (``tests/service_processes.py``) with two workers, on a
PostgreSQL database, a RabbitMQ vhost and a Redis database of the test's own, so the ledger check can
read whole tables, every DLQ and every key as this test's alone.

The sandbox delivers its webhooks through the flood's tap (``flood.WebhookTap``), which forwards each
one to the web process unchanged and notes what it answered: ``PUBLIC_BASE_URL`` (orders'
``notify_url``) and ``SANDBOX_WEBHOOK_URL`` both name the tap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import asyncpg
import pytest

from payments.bridges.postgres.migrate import migrate
from tests.chaos.webhooks import APP_ID, SECRET, WebhookTap, running_tap
from tests.e2e.isolation import emptied, own_vhost
from tests.service_processes import Service, ServicePorts, running_service, service_environment

#: A Redis database of the chaos tests' own (recovery 13, replay 14, the rest of the run 15, 11).
REDIS_URL: Final = "redis://127.0.0.1:6379/12"
#: The second worker's name (the first is ``worker``).
SECOND_WORKER: Final = "worker-2"


@dataclass(frozen=True)
class Chaos:
    """What a chaos test works with: the processes, their database, and the webhook tap."""

    service: Service
    dsn: str
    tap: WebhookTap


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with own_vhost("payments-chaos") as url:
        yield url


@pytest.fixture
async def own_database(scratch_dsn: str, postgres_dsn: str) -> str:
    """A database of the test's own, migrated (``scratch_dsn`` drops it afterwards)."""
    admin = await asyncpg.connect(postgres_dsn)
    try:
        # Identifiers cannot be bind parameters; the name is scratch_dsn's, only [a-z0-9_].
        await admin.execute(f'CREATE DATABASE "{scratch_dsn.rsplit("/", 1)[1]}"')
    finally:
        await admin.close()
    await migrate(scratch_dsn)
    return scratch_dsn


@pytest.fixture
async def chaos(
    own_database: str, vhost_url: str, tmp_path: Path, unused_tcp_port_factory
) -> AsyncIterator[Chaos]:
    """The service as real processes, two workers, ready; its webhooks through a tap."""
    redis_url = await emptied(REDIS_URL)
    ports = ServicePorts.free(unused_tcp_port_factory)
    async with running_tap(unused_tcp_port_factory(), f"http://127.0.0.1:{ports.web}") as tap:
        environ = service_environment(
            dsn=own_database,
            amqp_url=vhost_url,
            redis_url=redis_url,
            ports=ports,
            cashfree_app_id=APP_ID,
            cashfree_secret=SECRET,
            PUBLIC_BASE_URL=tap.url,
            SANDBOX_WEBHOOK_URL=tap.webhook_url,
            RATE_LIMITS_ENABLED="false",
            # Retry tiers of 0.3 s, 1.2 s, 6 s and 18 s: like production's, together they outlast a
            # restart of a few seconds, so a message failing through them does not reach a DLQ.
            RETRY_DELAY_SCALE="0.01",
            # A command whose worker died (or whose reply was lost) answers 202 after this, and the
            # client retries with its key: short, so a lost reply costs the flood little.
            COMMAND_REPLY_TIMEOUT_SECONDS="5",
            # A killed worker's payment locks expire after this (the default is 120 s); still far
            # longer than one sandbox call with its retries.
            PAYMENT_LOCK_TTL_SECONDS="10",
            # The relay polls this often besides NOTIFY, which a PostgreSQL restart cuts.
            OUTBOX_POLL_SECONDS="0.5",
        )
        with running_service(environ, tmp_path, worker_ports=[unused_tcp_port_factory()]) as service:
            await service.ready()
            yield Chaos(service, own_database, tap)

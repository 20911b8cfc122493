"""The assembled product for end-to-end tests (see ``stack.py``)."""

from __future__ import annotations

import pytest

from tests.e2e.stack import running_stack


@pytest.fixture
def environ(migrated_dsn, amqp_url, redis_url) -> dict[str, str]:
    """The settings every e2e stack runs on: the test run's services, fast retry tiers, quiet logs,
    no fraud rules."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": migrated_dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "RETRY_DELAY_SCALE": "0.001",
        "WORKER_METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        "COMMAND_REPLY_TIMEOUT_SECONDS": "30",
        # The flows use a few fixed users and customers from one address; the default velocity rules
        # would (rightly) stop them. The screen still runs; tests of fraud set their own rules.
        "FRAUD_RULES": "{}",
        # The tests name their client with X-Forwarded-For, as a proxy in front of the API would.
        "TRUSTED_PROXIES": "127.0.0.1/32",
    }


@pytest.fixture
async def stack(environ, aiohttp_server, aiohttp_client, unused_tcp_port):
    async for running in running_stack(environ, aiohttp_server, aiohttp_client, unused_tcp_port):
        yield running

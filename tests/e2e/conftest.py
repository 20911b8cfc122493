"""The assembled product for end-to-end tests (see ``stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from tests.e2e.session_log import SessionLog, capturing
from tests.e2e.stack import running_stack

#: Reads the whole run's log, so it runs after every other e2e test.
LOG_AUDIT: Final = "test_logs_hold_no_secrets.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the log audit after the last other e2e test (the session's other tests keep their place)."""
    audit = [item for item in items if item.path.name == LOG_AUDIT]
    rest = [item for item in items if item.path.name != LOG_AUDIT]
    e2e = [index for index, item in enumerate(rest) if item.path.parent.name == "e2e"]
    at = e2e[-1] + 1 if e2e else len(rest)
    items[:] = [*rest[:at], *audit, *rest[at:]]


@pytest.fixture(scope="session", autouse=True)
def session_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionLog]:
    """Every line the e2e stacks log during the run (``session_log.py``)."""
    with capturing(tmp_path_factory.mktemp("logs") / "e2e.jsonl") as log:
        yield log


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
        # The flows send bursts (200 concurrent creates of one user); test_rate_limits.py enables limits.
        "RATE_LIMITS_ENABLED": "false",
    }


@pytest.fixture
async def stack(environ, aiohttp_server, aiohttp_client, unused_tcp_port):
    async for running in running_stack(environ, aiohttp_server, aiohttp_client, unused_tcp_port):
        yield running

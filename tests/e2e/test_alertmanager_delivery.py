"""Debian's Alertmanager, running our ``docker/alertmanager/alertmanager.yml``, delivers an alert to the
running product: it arrives through the intake with the token from its credentials file, is stored
as an admin alert, and is mailed to the admins.

Only the receiver's address and the token file's path differ from the shipped file (the stack's web
server, a file in the test's directory); routes, grouping and the auth scheme are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from tests.observability import DOCKER
from tests.prometheus_server import log_tail, terminate
from tests.waiting import eventually

ALERTMANAGER: Final = Path("/usr/bin/prometheus-alertmanager")
TOKEN: Final = "alertmanager-e2e-token-0123456789abcdef"
ADMIN: Final = "oncall@commdesk.example"
#: A critical alert waits for group_wait (10 s) before it is sent; the rest is the stack's own work.
DELIVERY_DEADLINE_SECONDS: Final = 60.0
#: The run's database is shared: this test's alert is the one about its own queue label.
STORED_ALERTS: Final = "SELECT kind, subject, severity, source FROM alerts WHERE subject = $1"


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "ALERTMANAGER_TOKEN": TOKEN, "ADMIN_EMAILS": ADMIN}


def our_config(web_url: str, token_file: Path) -> dict[str, Any]:
    """The shipped configuration, pointed at ``web_url`` and reading the token from ``token_file``."""
    config = yaml.safe_load((DOCKER / "alertmanager" / "alertmanager.yml").read_text())
    [receiver] = config["receivers"]
    [webhook] = receiver["webhook_configs"]
    shipped = webhook["url"]
    assert shipped.startswith("http://web:8080/"), shipped
    webhook["url"] = shipped.replace("http://web:8080", web_url, 1)
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


@contextlib.asynccontextmanager
async def running_alertmanager(config: dict[str, Any], directory: Path, port: int) -> AsyncIterator[str]:
    """Alertmanager on ``127.0.0.1:port`` (no cluster); its base URL once ready."""
    assert ALERTMANAGER.exists(), (
        f"{ALERTMANAGER} is missing: run `make test` (scripts/ensure-observability.sh)"
    )
    config_file = directory / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log = directory / "alertmanager.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(ALERTMANAGER),
            f"--config.file={config_file}",
            f"--storage.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                assert process.returncode is None, log_tail(log)
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base_url}/-/ready") as response:
                        return response.status == 200
                return False

            await eventually(ready, timeout=30, what="Alertmanager to be ready")
        yield base_url
    finally:
        await terminate(process)


async def test_alertmanager_delivers_a_firing_alert_that_is_stored_and_mailed(
    stack, tmp_path, unused_tcp_port_factory
):
    token_file = tmp_path / "alertmanager_token"
    token_file.write_text(TOKEN + "\n")  # as a secret file is usually written: the newline is trimmed
    web_url = str(stack.api.make_url("")).rstrip("/")
    queue = f"payments.commands.dlq.{uuid.uuid4().hex[:8]}"
    alert = {
        "labels": {
            "alertname": "PaymentsDeadLetterGrowth",
            "severity": "critical",
            "team": "payments",
            "queue": queue,
        },
        "annotations": {
            "summary": "Messages are reaching payments.commands.dlq",
            "description": "3 messages were dead-lettered in 15 minutes.",
            "runbook_url": "docs/runbook.md#paymentsdeadlettergrowth",
        },
        "startsAt": datetime.now(UTC).isoformat(),
    }

    config = our_config(web_url, token_file)
    async with (
        running_alertmanager(config, tmp_path, unused_tcp_port_factory()) as alertmanager,
        aiohttp.ClientSession() as session,
        session.post(f"{alertmanager}/api/v2/alerts", json=[alert]) as posted,
    ):
        assert posted.status == 200, await posted.text()

        async def stored() -> list[Any]:
            return await stack.rows(STORED_ALERTS, f"queue={queue}")

        rows = await eventually(stored, timeout=DELIVERY_DEADLINE_SECONDS, what="the alert stored")

    assert [tuple(row) for row in rows] == [
        ("PaymentsDeadLetterGrowth", f"queue={queue}", "critical", "alertmanager")
    ]

    def ours() -> list[Any]:
        # The stack's own agents may mail admins too (a queue alert): this test's alert names its queue.
        return [m for m in stack.mail.messages if queue in m.get_body(("plain",)).get_content()]

    [mail] = await eventually(ours, timeout=30, what="the alert's email")
    assert ADMIN in str(mail["To"])
    assert (
        "Messages are reaching payments.commands.dlq"
        in str(mail["Subject"]) + mail.get_body(("plain",)).get_content()
    )

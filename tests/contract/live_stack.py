"""The product as it runs in production, for schemathesis (its calls block, so it cannot share a test's
event loop): ``payments smtp-sink``, ``sandbox``, ``web`` and ``worker`` as processes on the test
run's PostgreSQL, Redis and RabbitMQ. Each process writes its log to a file; a failure shows their
last lines. ``live_stack`` yields once every process answers and the command queues have consumers;
``seed`` then makes the resources the known cases read, through the API as a client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import asyncpg

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.bridges.smtp.url import SmtpUrl
from payments.pipeline.settings import Settings, load_settings
from payments.pipeline.topology import PAYMENT_COMMANDS, REFUND_COMMANDS
from payments.web.auth import ALERTMANAGER_PATH, mint_token
from tests.prometheus_server import log_tail
from tests.waiting import eventually

CASHFREE_APP_ID: Final = "schemathesis-api-app"
CASHFREE_SECRET: Final = "schemathesis-api-cashfree-secret-0123456789"
ALERTMANAGER_TOKEN: Final = "schemathesis-alertmanager-token-0123456789"
#: Four Python processes importing the whole package and declaring the topology, on two cores.
START_DEADLINE_SECONDS: Final = 90.0
#: A process gets this long after SIGTERM (the web process lets in-flight requests finish).
STOP_DEADLINE_SECONDS: Final = 20.0
#: Commands the API sends and waits for: their queues must be consumed before a write can answer 201.
COMMAND_QUEUES: Final = (PAYMENT_COMMANDS.name, REFUND_COMMANDS.name)
ADMIN: Final = "schemathesis-admin"
OWNER: Final = "schemathesis-owner"
#: The sandbox's test instrument that pays (bridges/cashfree/sandbox/instruments.py).
SUCCEEDS: Final = "testsuccess@gocash"
#: The worker issues an invoice, and processes the payment's webhooks, shortly after the payment.
WORKER_DEADLINE_SECONDS: Final = 30.0
CREATE_BODY: Final = {
    "amount": "499.00",
    "currency": "INR",
    "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
    "description": "CommDesk Pro",
}
NOTIFICATION: Final = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "SchemathesisProbe", "severity": "warning", "queue": "payments.commands"},
            "annotations": {"summary": "A probe of the intake"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
    ],
}


@dataclass(frozen=True)
class StackPorts:
    web: int
    worker_metrics: int
    sandbox: int
    smtp: int


@dataclass(frozen=True)
class LiveStack:
    """The running processes' settings, addresses and logs."""

    settings: Settings
    web_url: str
    #: Cashfree's base URL as the app calls it (the sandbox, ``.../pg``).
    cashfree_url: str
    logs: tuple[Path, ...]

    def failure(self, message: str) -> str:
        """``message`` followed by the last lines of every process's log."""
        return "\n".join([message, *(log_tail(log) for log in self.logs)])


def stack_environment(*, dsn: str, amqp_url: str, redis_url: str, ports: StackPorts) -> dict[str, str]:
    """What the processes run on: the test run's services, fast retries, no fraud rules, no rate
    limits, a short wait for command replies, warnings only in the logs."""
    web_url = f"http://127.0.0.1:{ports.web}"
    return {
        **os.environ,
        "APP_ENV": "test",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": f"smtp://127.0.0.1:{ports.smtp}",
        "HOST": "127.0.0.1",
        "PORT": str(ports.web),
        "PUBLIC_BASE_URL": web_url,
        "PROMETHEUS_ENABLED": "true",
        "WORKER_METRICS_PORT": str(ports.worker_metrics),
        "SANDBOX_HOST": "127.0.0.1",
        "SANDBOX_PORT": str(ports.sandbox),
        "SANDBOX_WEBHOOK_URL": f"{web_url}/api/v1/webhooks/cashfree",
        "SANDBOX_ENFORCE_RATE_LIMITS": "false",
        "CASHFREE_BASE_URL": f"http://127.0.0.1:{ports.sandbox}/pg",
        "CASHFREE_APP_ID": CASHFREE_APP_ID,
        "CASHFREE_SECRET_KEY": CASHFREE_SECRET,
        "ALERTMANAGER_TOKEN": ALERTMANAGER_TOKEN,
        "RETRY_DELAY_SCALE": "0.001",
        "COMMAND_REPLY_TIMEOUT_SECONDS": "5",
        "FRAUD_RULES": "{}",
        "RATE_LIMITS_ENABLED": "false",
    }


@contextmanager
def live_stack(environ: Mapping[str, str], directory: Path) -> Iterator[LiveStack]:
    """The four processes, started from ``environ``, until the block ends (SIGTERM, then SIGKILL)."""
    settings = load_settings(environ)
    host = settings.web.host
    commands = (
        ("smtp-sink", "--directory", str(directory / "mail")),
        ("sandbox",),
        ("web",),
        ("worker",),
    )
    with ExitStack() as stack:
        processes = [stack.enter_context(_process(command, environ, directory)) for command in commands]
        live = LiveStack(
            settings=settings,
            web_url=f"http://{host}:{settings.web.port}",
            cashfree_url=settings.cashfree.base_url,
            logs=tuple(directory / f"{command[0]}.log" for command in commands),
        )
        try:
            asyncio.run(_ready(live, processes, f"http://{host}:{settings.worker.metrics_port}"))
        except AssertionError as error:
            raise AssertionError(live.failure(str(error))) from None
        yield live


@contextmanager
def _process(
    command: tuple[str, ...], environ: Mapping[str, str], directory: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with (directory / f"{command[0]}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "payments", *command],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


async def _ready(live: LiveStack, processes: list[subprocess.Popen[bytes]], worker_url: str) -> None:
    """Every process answers, and the worker consumes the command queues; fails at once if one exits."""
    smtp = SmtpUrl.parse(live.settings.smtp.url.get_secret_value())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def up() -> bool:
            for process in processes:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{' '.join(map(str, process.args))} exited with {process.returncode}"
                    )
            return (
                await _listening(smtp.host, smtp.port)
                and await _answers_200(session, f"{live.cashfree_url.removesuffix('/pg')}/_sandbox/clock")
                and await _answers_200(session, f"{live.web_url}/health")
                and await _answers_200(session, f"{worker_url}/health")
                and await _commands_consumed(session, live.web_url)
            )

        await eventually(up, timeout=START_DEADLINE_SECONDS, interval=0.2, what="the stack to start")


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _answers_200(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _commands_consumed(session: aiohttp.ClientSession, web_url: str) -> bool:
    """``/health/queues`` shows a consumer on each command queue (the worker's agents are running)."""
    try:
        async with session.get(f"{web_url}/health/queues") as response:
            if response.status != 200:
                return False
            details = (await response.json())["details"]
    except aiohttp.ClientError:
        return False
    return all(details.get(queue, {}).get("consumers", 0) >= 1 for queue in COMMAND_QUEUES)


@dataclass(frozen=True)
class Seeded:
    """What ``seed`` made: resources the known cases read."""

    payment_id: str
    order_id: str
    refund_id: str
    run_id: str


async def seed(stack: LiveStack) -> Seeded:
    """A payment paid at the sandbox, verified, partly refunded and invoiced; a reconciliation run;
    an alert from the Alertmanager intake."""
    security = stack.settings.security
    now = datetime.now(UTC)
    owner = mint_token(security, user_id=OWNER, admin=False, now=now)
    admin = mint_token(security, user_id=ADMIN, admin=True, now=now)
    async with (
        aiohttp.ClientSession(stack.web_url, timeout=aiohttp.ClientTimeout(total=30)) as api,
        CashfreeClient(base_url=stack.cashfree_url, app_id=CASHFREE_APP_ID, secret_key=CASHFREE_SECRET) as cf,
    ):
        payment = await _call(api, "POST", "/api/v1/payments/create", owner, CREATE_BODY, status=201)
        pay = UpiPaymentMethod(upi=Upi(channel="collect", upi_id=SUCCEEDS))
        await cf.pay_order(
            OrderPayRequest(payment_session_id=payment["paymentSessionId"], payment_method=pay),
            attempt_key=uuid.uuid4().hex,
        )
        verify = {"paymentId": payment["paymentId"]}
        verified = await _call(api, "POST", "/api/v1/payments/verify", owner, verify, status=200)
        assert verified["status"] == "SUCCESS", verified
        refund_body = {"paymentId": payment["paymentId"], "amount": "100.00", "reason": "customer asked"}
        refund = await _call(api, "POST", "/api/v1/refunds/initiate", owner, refund_body, status=201)
        today = now.date()
        window = {"from": str(today - timedelta(days=2)), "to": str(today + timedelta(days=1))}
        run = await _call(api, "POST", "/api/v1/admin/reconciliation/runs", admin, window, status=201)
        intake = f"Bearer {ALERTMANAGER_TOKEN}"
        async with api.post(ALERTMANAGER_PATH, json=NOTIFICATION, headers={"Authorization": intake}) as r:
            assert r.status == 200, await r.text()
        invoice = f"/api/v1/payments/{payment['paymentId']}/invoice"
        await eventually(
            lambda: _status_is(api, invoice, owner, 200),
            timeout=WORKER_DEADLINE_SECONDS,
            what="the invoice to be issued",
        )
    return Seeded(payment["paymentId"], payment["orderId"], refund["refundId"], run["run"]["runId"])


async def _call(
    api: aiohttp.ClientSession, method: str, path: str, token: str, body: Any, *, status: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with api.request(method, path, json=body, headers=headers) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == status, f"{method} {path} -> {response.status}: {answer}"
        return answer


async def _status_is(api: aiohttp.ClientSession, path: str, token: str, status: int) -> bool:
    async with api.get(path, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status == status


async def finished_webhook(dsn: str) -> int:
    """The id of a stored webhook the worker has finished with (only those may be queued again)."""
    connection = await asyncpg.connect(dsn)
    try:
        query = "SELECT min(id) FROM webhook_logs WHERE processing_status = 'SUCCESS'"
        found = await eventually(
            lambda: connection.fetchval(query), timeout=WORKER_DEADLINE_SECONDS, what="a processed webhook"
        )
        return int(found)
    finally:
        await connection.close()

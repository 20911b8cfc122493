"""The service as it runs in production, for tests that need it as real processes: ``payments
smtp-sink``, ``sandbox``, ``web`` and ``worker`` (``python -m payments ...``) on free loopback ports and
the test run's PostgreSQL, Redis and RabbitMQ.

``service_environment`` is what they run on; ``running_service`` starts them and, when its block ends,
stops them (SIGTERM, then SIGKILL); ``Service.ready`` waits until every one answers and the worker
consumes the command queues. Each process writes its log to a file; every failure shows their last
lines.

The processes are ``subprocess.Popen``s, so one context manager serves a synchronous fixture
(schemathesis' calls block, so they cannot share a test's event loop) and an async test alike. The
waits are coroutines: a synchronous caller runs them with ``asyncio.run``. Nothing the processes talk
to runs in the caller's event loop (the SMTP sink is one of them), so stopping them may block it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Final, TypeVar

import aiohttp

from payments.bridges.smtp.url import SmtpUrl
from payments.pipeline.settings import Settings, load_settings
from payments.pipeline.topology import PAYMENT_COMMANDS, REFUND_COMMANDS
from tests.prometheus_server import log_tail
from tests.waiting import eventually

T = TypeVar("T")

#: Four Python processes importing the whole package and declaring the topology, on two cores.
START_DEADLINE_SECONDS: Final = 90.0
#: A process gets this long after SIGTERM (the web process lets in-flight requests finish).
STOP_DEADLINE_SECONDS: Final = 20.0
#: How often a wait on the processes asks again.
POLL_SECONDS: Final = 0.2
#: Commands the API sends and waits for: their queues must be consumed before a write can answer 201.
COMMAND_QUEUES: Final = (PAYMENT_COMMANDS.name, REFUND_COMMANDS.name)


@dataclass(frozen=True)
class ServicePorts:
    """The loopback ports the processes listen on."""

    web: int
    worker_metrics: int
    sandbox: int
    smtp: int

    @classmethod
    def free(cls, unused_port: Callable[[], int]) -> ServicePorts:
        """One unused port each, from pytest-asyncio's ``unused_tcp_port_factory``."""
        return cls(*(unused_port() for _ in fields(cls)))


def service_environment(
    *,
    dsn: str,
    amqp_url: str,
    redis_url: str,
    ports: ServicePorts,
    cashfree_app_id: str,
    cashfree_secret: str,
    **extra: str,
) -> dict[str, str]:
    """What the processes run on: the test run's services, the sandbox as Cashfree (with these
    credentials), fast retries, no fraud rules, warnings only in the logs; then ``extra``."""
    web_url = f"http://127.0.0.1:{ports.web}"
    return {
        **os.environ,
        "APP_ENV": "test",
        # Warnings and errors only: the access log of a scrape a second would bury them.
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
        "CASHFREE_APP_ID": cashfree_app_id,
        "CASHFREE_SECRET_KEY": cashfree_secret,
        "RETRY_DELAY_SCALE": "0.001",
        "COMMAND_REPLY_TIMEOUT_SECONDS": "30",
        "FRAUD_RULES": "{}",
        **extra,
    }


@dataclass(frozen=True)
class Service:
    """The running processes (by command), the settings they run on, their addresses and logs."""

    settings: Settings
    processes: Mapping[str, subprocess.Popen[bytes]]
    #: Every process's log; a test adds others a failure should show too (Prometheus's).
    logs: list[Path]

    @property
    def web_url(self) -> str:
        return f"http://{self.settings.web.host}:{self.settings.web.port}"

    @property
    def worker_metrics_url(self) -> str:
        return f"http://{self.settings.web.host}:{self.settings.worker.metrics_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://{self.settings.sandbox.host}:{self.settings.sandbox.port}"

    @property
    def cashfree_url(self) -> str:
        """Cashfree's base URL as the app calls it (the sandbox, ``.../pg``)."""
        return self.settings.cashfree.base_url

    def failure(self, message: str) -> str:
        """``message`` followed by the last lines of every log."""
        return "\n".join([message, *(log_tail(log) for log in self.logs)])

    def check_alive(self) -> None:
        for command, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"payments {command} exited with {process.returncode}")

    async def within(
        self,
        probe: Callable[[], Awaitable[T]],
        *,
        timeout: float,
        what: str,
        detail: Callable[[], str] = str,
    ) -> T:
        """``eventually(probe)``, at once failing if a process has exited; a failure shows ``detail()``
        and the logs."""

        async def alive_and() -> T:
            self.check_alive()
            return await probe()

        try:
            return await eventually(alive_and, timeout=timeout, interval=POLL_SECONDS, what=what)
        except AssertionError as error:
            raise AssertionError(self.failure(f"{error}{detail()}")) from None

    async def ready(self, timeout: float = START_DEADLINE_SECONDS) -> None:
        """Every process answers, and the worker consumes the command queues."""
        smtp = SmtpUrl.parse(self.settings.smtp.url.get_secret_value())
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def answering() -> bool:
                return (
                    await _listening(smtp.host, smtp.port)
                    and await _answers_200(session, f"{self.sandbox_url}/_sandbox/clock")
                    and await _answers_200(session, f"{self.web_url}/health")
                    and await _answers_200(session, f"{self.worker_metrics_url}/health")
                    and await _commands_consumed(session, self.web_url)
                )

            await self.within(
                answering,
                timeout=timeout,
                what="the SMTP sink, the sandbox, the web process and the worker to answer, and the"
                f" worker to consume {', '.join(COMMAND_QUEUES)}",
            )


@contextmanager
def running_service(environ: Mapping[str, str], directory: Path) -> Iterator[Service]:
    """The four processes, started from ``environ`` with their logs (and the sink's mail) in
    ``directory``, until the block ends; not yet ready when it begins (``Service.ready``)."""
    arguments = {
        "smtp-sink": ("--directory", str(directory / "mail")),
        "sandbox": (),
        "web": (),
        "worker": (),
    }
    logs = {command: directory / f"{command}.log" for command in arguments}
    with ExitStack() as stack:
        processes = {
            command: stack.enter_context(service_process((command, *rest), environ, logs[command]))
            for command, rest in arguments.items()
        }
        yield Service(load_settings(environ), processes, list(logs.values()))


@contextmanager
def service_process(
    command: tuple[str, ...], environ: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``payments <command>``, its output in ``log``; stopped (SIGTERM, then SIGKILL) on exit. For a
    test that needs one process on its own (a worker started late) rather than ``running_service``."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "payments", *command],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            stdout=output,
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


async def _answers_200(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


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

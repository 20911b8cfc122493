"""The service as it runs in production, for tests that need it as real processes: ``payments
smtp-sink``, ``sandbox``, ``web`` and ``worker`` (``python -m payments ...``) on free loopback ports and
the test run's PostgreSQL, Redis and RabbitMQ.

``service_environment`` is what they run on; ``running_service`` starts them (with more workers when
asked: competing consumers, as in production) and, when its block ends, stops them (SIGTERM, then
SIGKILL); ``Service.ready`` waits until every one answers and every worker consumes the command
queues. ``Service.kill`` SIGKILLs one process, as a crash would, and ``Service.start_again`` starts it
afresh; ``check_alive`` knows which exits were on purpose. Each process writes its log to a file;
every failure shows their last lines.

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
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final, TypeVar

import aiohttp

from payments.bridges.smtp.url import SmtpUrl
from payments.pipeline import bootstrap
from payments.pipeline.app import App
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
    """The running processes (by name), the settings they run on, their addresses and logs.

    Names are the commands (``smtp-sink``, ``sandbox``, ``web``, ``worker``), and ``worker-2``,
    ``worker-3``... for the workers beyond the first.
    """

    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]]
    #: Every process's log; a test adds others a failure should show too (Prometheus's).
    logs: list[Path]
    #: The metrics (and ``/health``) port of each worker, by name.
    worker_ports: Mapping[str, int] = field(default_factory=dict)
    #: Processes killed on purpose and not started again: their exit is no failure.
    killed: set[str] = field(default_factory=set)
    #: Starts the process of a name afresh (``running_service`` sets it).
    launch: Callable[[str], subprocess.Popen[bytes]] | None = None

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

    @property
    def live_workers(self) -> list[str]:
        """The workers running now (not killed)."""
        return [name for name in self._worker_ports() if name not in self.killed]

    def _worker_ports(self) -> Mapping[str, int]:
        # A Service made by hand rather than by running_service has the one worker its settings name.
        return self.worker_ports or {"worker": self.settings.worker.metrics_port}

    def failure(self, message: str) -> str:
        """``message`` followed by the last lines of every log."""
        return "\n".join([message, *(log_tail(log) for log in self.logs)])

    def check_alive(self) -> None:
        """Fail if a process exited, unless it was killed on purpose."""
        for name, process in self.processes.items():
            if name not in self.killed and process.poll() is not None:
                raise AssertionError(f"payments {name} exited with {process.returncode}")

    def kill(self, name: str) -> None:
        """SIGKILL ``name``, as the kernel's OOM killer or a lost host would: no shutdown, no acks, no
        outbox drain, its Redis locks left to expire. Returns once the process is gone."""
        process = self.processes[name]
        self.killed.add(name)
        process.kill()
        process.wait(timeout=STOP_DEADLINE_SECONDS)

    def start_again(self, name: str) -> None:
        """Start a killed process afresh: the same command and environment, a log file of its own."""
        assert name in self.killed, f"payments {name} was not killed"
        assert self.launch is not None, "this Service cannot start processes"
        self.processes[name] = self.launch(name)
        self.killed.discard(name)

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
        """Every process answers, and every live worker consumes the command queues."""
        smtp = SmtpUrl.parse(self.settings.smtp.url.get_secret_value())
        workers = self.live_workers
        host = self.settings.web.host
        worker_ports = self._worker_ports()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

            async def answering() -> bool:
                return (
                    await _listening(smtp.host, smtp.port)
                    and await _answers_200(session, f"{self.sandbox_url}/_sandbox/clock")
                    and await _answers_200(session, f"{self.web_url}/health")
                    and all(
                        [
                            await _answers_200(session, f"http://{host}:{worker_ports[name]}/health")
                            for name in workers
                        ]
                    )
                    and await _commands_consumed(session, self.web_url, len(workers))
                )

            await self.within(
                answering,
                timeout=timeout,
                what=f"the SMTP sink, the sandbox, the web process and {', '.join(workers)} to answer,"
                f" and {len(workers)} worker(s) to consume {', '.join(COMMAND_QUEUES)}",
            )


@contextmanager
def running_service(
    environ: Mapping[str, str], directory: Path, *, worker_ports: Sequence[int] = ()
) -> Iterator[Service]:
    """The four processes, started from ``environ`` with their logs (and the sink's mail) in
    ``directory``, until the block ends; not yet ready when it begins (``Service.ready``).

    Each port of ``worker_ports`` adds a worker (``worker-2``, ``worker-3``...) with its metrics there:
    competing consumers of the same queues, as production runs them.
    """
    arguments: dict[str, tuple[str, ...]] = {
        "smtp-sink": ("smtp-sink", "--directory", str(directory / "mail")),
        "sandbox": ("sandbox",),
        "web": ("web",),
        "worker": ("worker",),
    }
    environs = dict.fromkeys(arguments, environ)
    ports = {"worker": load_settings(environ).worker.metrics_port}
    for number, port in enumerate(worker_ports, start=2):
        name = f"worker-{number}"
        arguments[name], ports[name] = ("worker",), port
        environs[name] = {**environ, "WORKER_METRICS_PORT": str(port)}
    logs: list[Path] = []
    starts: Counter[str] = Counter()
    with ExitStack() as stack:

        def launch(name: str) -> subprocess.Popen[bytes]:
            starts[name] += 1
            suffix = "" if starts[name] == 1 else f".{starts[name]}"
            log = directory / f"{name}{suffix}.log"
            logs.append(log)
            return stack.enter_context(service_process(arguments[name], environs[name], log))

        processes = {name: launch(name) for name in arguments}
        yield Service(load_settings(environ), processes, logs, worker_ports=ports, launch=launch)


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


async def _commands_consumed(session: aiohttp.ClientSession, web_url: str, workers: int = 1) -> bool:
    """``/health/queues`` shows, on each command queue, the consumers of ``workers`` workers (each runs
    its agents' ``concurrency`` consumers): every worker's agents are running."""
    try:
        async with session.get(f"{web_url}/health/queues") as response:
            if response.status != 200:
                return False
            details = (await response.json())["details"]
    except aiohttp.ClientError:
        return False
    wanted = _consumers_per_worker()
    return all(
        details.get(queue, {}).get("consumers", 0) >= workers * wanted[queue] for queue in COMMAND_QUEUES
    )


def _consumers_per_worker() -> Counter[str]:
    """How many consumers one worker opens on each queue: one per instance of each agent on it."""
    consumers: Counter[str] = Counter()
    for spec in App(bootstrap.blueprints()).agents:
        consumers[spec.queue.name] += spec.concurrency
    return consumers

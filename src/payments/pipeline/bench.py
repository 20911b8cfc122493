"""``payments bench``: webhook ingest against a ceiling measured in the same run (DESIGN §11).

Three kinds of process, so that none measures itself:

- the ceiling (``bench_ceiling``): a bare aiohttp handler that only publishes the body with a confirm;
- ``payments web``, the real ingest, on the real Redis and PostgreSQL of the environment;
- the load generator (``bench_load``), started once per run.

Both servers publish into a RabbitMQ vhost created for this run (``payments-bench-<id>``, through
``rabbitmqctl``) and deleted at the end. No worker runs: processing is not what is measured, and a
worker would take CPU from the servers on a small machine. The deliveries simply queue; the queue is
purged before each run, and its depth after the run is checked against the 200s the load generator
saw. Idempotency keys are unique per run (``bench-<id>-<target>-<run>-<n>``), and ``payments web`` is
told to keep them for a minute only, so the run leaves nothing lasting in Redis either.

Each repetition measures the ceiling, then ingest; the best run per target is kept (see
``BenchReport.best``). The results are printed as a table and can be written as JSON and as
``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiohttp
from pydantic import SecretStr
from yarl import URL

from payments.bridges.rabbitmq.inspection import queue_depths
from payments.pipeline import bootstrap
from payments.pipeline.bench_docs import render_performance
from payments.pipeline.bench_machine import (
    describe_machine,
    machine_busy_seconds,
    process_usage,
    used_between,
)
from payments.pipeline.bench_report import (
    BenchReport,
    LoadReport,
    Method,
    RunResult,
    Target,
    render_table,
    report_json,
)
from payments.pipeline.logging import configure_logging
from payments.pipeline.settings import Settings
from payments.pipeline.topology import WEBHOOKS_RECEIVED
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH

#: Where the bench's processes write their output (relative to the working directory).
LOG_DIRECTORY: Final = Path("var/bench")
#: The servers listen on loopback only, whatever HOST says.
_HOST: Final = "127.0.0.1"
#: How long a server may take to answer ``/health`` after it was started.
_START_DEADLINE_SECONDS: Final = 60.0
#: Slack on top of a phase's own length before a silent load generator counts as hung.
_PHASE_SLACK_SECONDS: Final = 120.0
#: How long a process gets to stop after SIGTERM before it is killed.
_STOP_GRACE_SECONDS: Final = 30.0


class BenchError(Exception):
    """The bench could not measure (a process did not start, a tool is missing); the message says why."""


@dataclass(frozen=True)
class BenchOptions:
    """``payments bench``'s command line."""

    concurrency: int = 32
    duration_seconds: float = 10.0
    #: When set, each run measures this many requests instead of ``duration_seconds``.
    requests: int | None = None
    warmup_seconds: float = 2.0
    repeat: int = 2
    json_path: Path | None = None
    docs_path: Path | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.repeat < 1 or (self.requests is not None and self.requests < 1):
            raise ValueError("--concurrency, --repeat and --requests must be at least 1")
        if self.duration_seconds <= 0 or self.warmup_seconds < 0:
            raise ValueError("--duration must be positive and --warmup not negative")


@dataclass(frozen=True)
class _Server:
    process: asyncio.subprocess.Process
    url: str


@dataclass(frozen=True)
class _Bench:
    """What every run needs: the run's id, the servers, the connections and the signing secret."""

    run_id: str
    options: BenchOptions
    resources: bootstrap.Resources
    servers: Mapping[Target, _Server]
    secret: str


async def run_bench(settings: Settings, options: BenchOptions, *, environ: Mapping[str, str]) -> int:
    """Measure, print the table, write what was asked for; 0 when every request was accepted and queued.

    ``environ`` is the environment ``payments web`` is started from (with the bench's changes).
    Raises ``BenchError`` when it cannot measure.
    """
    configure_logging(level="WARNING", service=settings.app.service_name, environment=settings.app.env.value)
    run_id, started_at = uuid.uuid4().hex[:8], datetime.now(UTC)
    async with fresh_vhost(settings.rabbitmq.url.get_secret_value(), f"payments-bench-{run_id}") as amqp_url:
        on_vhost = _with_amqp_url(settings, amqp_url)
        await bootstrap.run_topology(on_vhost)
        async with (
            bootstrap.open_resources(on_vhost, process="bench") as resources,
            _servers(amqp_url, environ) as servers,
        ):
            bench = _Bench(
                run_id, options, resources, servers, settings.cashfree.secret_key.get_secret_value()
            )
            runs = [
                await _measure(bench, target, repetition)
                for repetition in range(1, options.repeat + 1)
                for target in Target
            ]
            machine = await describe_machine(resources)
    report = BenchReport(
        run_id=run_id, started_at=started_at, machine=machine, method=_method(options, runs), runs=tuple(runs)
    )
    _write_results(report, options)
    return 0 if _all_accepted_and_queued(report) else 1


def _with_amqp_url(settings: Settings, amqp_url: str) -> Settings:
    rabbitmq = settings.rabbitmq.model_copy(update={"url": SecretStr(amqp_url)})
    return settings.model_copy(update={"rabbitmq": rabbitmq})


def _method(options: BenchOptions, runs: Sequence[RunResult]) -> Method:
    return Method(
        concurrency=options.concurrency,
        duration_seconds=None if options.requests is not None else options.duration_seconds,
        requests=options.requests,
        warmup_seconds=options.warmup_seconds,
        repeat=options.repeat,
        body_bytes=runs[0].load.body_bytes,
    )


@asynccontextmanager
async def fresh_vhost(url: str, vhost: str) -> AsyncIterator[str]:
    """Create ``vhost`` on the local broker, let the URL's user in, and delete it (and everything
    queued in it) on exit; yields ``url`` pointed at it."""
    await _rabbitmqctl("add_vhost", vhost)
    try:
        await _rabbitmqctl("set_permissions", "-p", vhost, URL(url).user or "guest", ".*", ".*", ".*")
        yield str(URL(url).with_path(f"/{vhost}"))
    finally:
        try:
            await _rabbitmqctl("delete_vhost", vhost)
        except BenchError as error:
            print(f"payments bench: could not delete vhost {vhost}: {error}", file=sys.stderr)


async def _rabbitmqctl(*arguments: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            "rabbitmqctl", "-q", *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
    except FileNotFoundError:
        raise BenchError(
            "rabbitmqctl is not on PATH: the bench needs it to create its own vhost on the local broker"
        ) from None
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    if process.returncode != 0:
        raise BenchError(f"rabbitmqctl {arguments[0]} failed: {output.decode(errors='replace').strip()}")


@asynccontextmanager
async def _servers(amqp_url: str, environ: Mapping[str, str]) -> AsyncIterator[dict[Target, _Server]]:
    """The ceiling and ``payments web``, started, healthy, and stopped on exit."""
    ceiling_port, web_port = _free_port(), _free_port()
    ceiling_argv = ["-m", "payments.pipeline.bench_ceiling", "--host", _HOST, "--port", str(ceiling_port)]
    async with (
        _spawn("ceiling", ceiling_argv, stdin_line=amqp_url) as ceiling,
        _spawn("web", ["-m", "payments", "web"], env=_web_environment(environ, amqp_url, web_port)) as web,
    ):
        servers = {
            Target.CEILING: _Server(ceiling, f"http://{_HOST}:{ceiling_port}/"),
            Target.INGEST: _Server(web, f"http://{_HOST}:{web_port}{CASHFREE_WEBHOOK_PATH}"),
        }
        await _wait_healthy(f"http://{_HOST}:{ceiling_port}/health", ceiling, "ceiling")
        await _wait_healthy(f"http://{_HOST}:{web_port}/health", web, "web")
        yield servers


def _web_environment(environ: Mapping[str, str], amqp_url: str, port: int) -> dict[str, str]:
    env = {name: value for name, value in environ.items() if name != "RABBITMQ_URL_FILE"}
    return {
        **env,
        "RABBITMQ_URL": amqp_url,
        "HOST": _HOST,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # The bench's keys need not outlive it: a minute (the least allowed) instead of a week.
        "WEBHOOK_DEDUP_TTL_SECONDS": "60",
        # The load comes from loopback, which an allow-list of Cashfree's addresses would refuse.
        "WEBHOOK_ALLOWED_SOURCES": "",
    }


def _free_port() -> int:
    # The port is free now; another process could take it before the server binds, which on a
    # machine running a benchmark is unlikely enough to answer with an error rather than a retry.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def _spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin_line: str | None = None,
    read_stdout: bool = False,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start ``python argv`` with its output in ``var/bench/<name>.log`` (stdout piped instead when
    ``read_stdout``) and ``stdin_line`` as its only input; SIGTERM it on exit, kill it if it lingers."""
    LOG_DIRECTORY.mkdir(parents=True, exist_ok=True)
    with (LOG_DIRECTORY / f"{name}.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if read_stdout else log,
            stderr=log,
        )
    assert process.stdin is not None  # stdin=PIPE
    process.stdin.write(f"{stdin_line}\n".encode() if stdin_line is not None else b"")
    process.stdin.close()
    try:
        yield process
    finally:
        await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=_STOP_GRACE_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _wait_healthy(url: str, process: asyncio.subprocess.Process, name: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_DEADLINE_SECONDS
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if process.returncode is not None:
                raise BenchError(f"the {name} process exited while starting; see {LOG_DIRECTORY}/{name}.log")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass  # not listening yet
            await asyncio.sleep(0.1)  # polling a process we do not control, under a deadline
    raise BenchError(f"{url} did not answer within {_START_DEADLINE_SECONDS:.0f} s")


async def _measure(bench: _Bench, target: Target, repetition: int) -> RunResult:
    """One run: purge the queue, load the target, read CPU around the measured phase, count the queue."""
    server, options = bench.servers[target], bench.options
    await _purge(bench.resources)
    argv = _load_argv(bench, target, repetition)
    async with _spawn("load", argv, stdin_line=bench.secret, read_stdout=True) as load:
        if await _read_line(load, within=options.warmup_seconds + _PHASE_SLACK_SECONDS) != "warm":
            raise BenchError(f"the load generator did not report its warm-up; see {LOG_DIRECTORY}/load.log")
        server_before, load_before = process_usage(server.process.pid), process_usage(load.pid)
        busy_before = machine_busy_seconds()
        line = await _read_line(load, within=_measured_timeout(options))
        busy_after = machine_busy_seconds()
        server_after, load_after = process_usage(server.process.pid), process_usage(load.pid)
        if await asyncio.wait_for(load.wait(), timeout=_STOP_GRACE_SECONDS) != 0:
            raise BenchError(f"the load generator failed; see {LOG_DIRECTORY}/load.log")
    [depth] = await queue_depths(bench.resources.amqp, [WEBHOOKS_RECEIVED.name])
    return RunResult(
        target=target,
        repetition=repetition,
        load=LoadReport.model_validate_json(line),
        server=used_between(server_before, server_after),
        load_generator=used_between(load_before, load_after),
        machine_cpu_seconds=busy_after - busy_before,
        queued=depth.messages,
    )


def _load_argv(bench: _Bench, target: Target, repetition: int) -> list[str]:
    options = bench.options
    argv = [
        "-m",
        "payments.pipeline.bench_load",
        "--url",
        bench.servers[target].url,
        "--key-prefix",
        f"bench-{bench.run_id}-{target.value}-{repetition}",
        "--concurrency",
        str(options.concurrency),
        "--warmup",
        str(options.warmup_seconds),
        "--duration",
        str(options.duration_seconds),
    ]
    return argv if options.requests is None else [*argv, "--requests", str(options.requests)]


def _measured_timeout(options: BenchOptions) -> float:
    # A run of N requests has no set length; ten minutes is far beyond any sensible N on one machine.
    return _PHASE_SLACK_SECONDS + (600.0 if options.requests is not None else options.duration_seconds)


async def _read_line(process: asyncio.subprocess.Process, *, within: float) -> str:
    assert process.stdout is not None  # the load generator's stdout is a pipe
    try:
        async with asyncio.timeout(within):
            line = await process.stdout.readline()
    except TimeoutError:
        raise BenchError(f"the load generator went quiet; see {LOG_DIRECTORY}/load.log") from None
    if not line:
        raise BenchError(f"the load generator stopped early; see {LOG_DIRECTORY}/load.log")
    return line.decode().strip()


async def _purge(resources: bootstrap.Resources) -> None:
    channel = await resources.amqp.channel()
    try:
        queue = await channel.declare_queue(WEBHOOKS_RECEIVED.name, passive=True)
        await queue.purge()
    finally:
        await channel.close()


def _write_results(report: BenchReport, options: BenchOptions) -> None:
    print(render_table(report))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
        print(f"raw numbers: {options.json_path}")
    if options.docs_path is not None:
        options.docs_path.write_text(render_performance(report), encoding="utf-8")
        print(f"written: {options.docs_path}")


def _all_accepted_and_queued(report: BenchReport) -> bool:
    """Every request got a 200 and every 200 left a message on the queue; else say what went wrong."""
    ok = True
    for run in report.runs:
        label = f"{run.target.value} run {run.repetition}"
        if run.error_count:
            print(f"payments bench: {label}: {run.error_count} request(s) not accepted", file=sys.stderr)
            ok = False
        if run.queued != run.load.accepted_total:
            print(
                f"payments bench: {label}: {run.load.accepted_total} accepted but {run.queued} queued",
                file=sys.stderr,
            )
            ok = False
    return ok

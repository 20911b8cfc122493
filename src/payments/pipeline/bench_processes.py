"""The processes of ``payments bench``: started as ``python -m ...`` with their output in
``var/bench/``, secrets on stdin, waited for until healthy, stopped with SIGTERM (then killed); and the
run's own RabbitMQ vhost, made and deleted with ``rabbitmqctl``."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import aiohttp
from pydantic import SecretStr
from yarl import URL

from payments.pipeline.settings import Settings

#: Where the bench's processes write their output (relative to the working directory).
LOG_DIRECTORY: Final = Path("var/bench")
#: The servers listen on loopback only, whatever HOST says.
HOST: Final = "127.0.0.1"
#: How long a server may take to answer ``/health`` after it was started (two cores, several
#: processes importing the whole package at once).
START_DEADLINE_SECONDS: Final = 90.0
#: How long a process gets to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS: Final = 30.0
#: How often a wait on a process we do not control asks again.
POLL_SECONDS: Final = 0.1


class BenchError(Exception):
    """The bench could not measure (a process did not start, a tool is missing); the message says why."""


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


def free_port() -> int:
    # The port is free now; another process could take it before the server binds, which on a
    # machine running a benchmark is unlikely enough to answer with an error rather than a retry.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def child_environment(environ: Mapping[str, str], **changes: str) -> dict[str, str]:
    """``environ`` with ``changes``; a changed variable's ``_FILE`` form is dropped, since the settings
    would prefer it to the value the bench sets."""
    dropped = {f"{name}_FILE" for name in changes}
    return {**{name: value for name, value in environ.items() if name not in dropped}, **changes}


@asynccontextmanager
async def spawn(
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
            # A load generator's one JSON line may hold every payment it timed.
            limit=2**26,
        )
    assert process.stdin is not None  # stdin=PIPE
    process.stdin.write(f"{stdin_line}\n".encode() if stdin_line is not None else b"")
    process.stdin.close()
    try:
        yield process
    finally:
        await stop(process)


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()


async def wait_healthy(url: str, process: asyncio.subprocess.Process, name: str) -> None:
    """Until ``url`` answers 200; ``BenchError`` if the process exits or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_DEADLINE_SECONDS
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
            await asyncio.sleep(POLL_SECONDS)  # polling a process we do not control, under a deadline
    raise BenchError(f"{url} did not answer within {START_DEADLINE_SECONDS:.0f} s")


async def read_line(process: asyncio.subprocess.Process, *, within: float, name: str = "load") -> str:
    """The next line the process prints; ``BenchError`` when it stops or stays quiet ``within`` s."""
    assert process.stdout is not None  # the load generator's stdout is a pipe
    try:
        async with asyncio.timeout(within):
            line = await process.stdout.readline()
    except TimeoutError:
        raise BenchError(f"the load generator went quiet; see {LOG_DIRECTORY}/{name}.log") from None
    if not line:
        raise BenchError(f"the load generator stopped early; see {LOG_DIRECTORY}/{name}.log")
    return line.decode().strip()


async def finish(process: asyncio.subprocess.Process, name: str) -> None:
    """Wait for a load generator that has printed its result; ``BenchError`` unless it exits 0."""
    if await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_SECONDS) != 0:
        raise BenchError(f"the load generator failed; see {LOG_DIRECTORY}/{name}.log")


def with_amqp_url(settings: Settings, amqp_url: str) -> Settings:
    """``settings`` pointed at another broker URL (the run's vhost)."""
    rabbitmq = settings.rabbitmq.model_copy(update={"url": SecretStr(amqp_url)})
    return settings.model_copy(update={"rabbitmq": rabbitmq})


async def wait_listening(port: int, process: asyncio.subprocess.Process, name: str) -> None:
    """Until something accepts TCP connections on ``HOST:port`` (a server without HTTP, the SMTP sink)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_DEADLINE_SECONDS
    while loop.time() < deadline:
        if process.returncode is not None:
            raise BenchError(f"the {name} process exited while starting; see {LOG_DIRECTORY}/{name}.log")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(POLL_SECONDS)  # polling a process we do not control, under a deadline
            continue
        writer.close()
        return
    raise BenchError(f"nothing listened on {HOST}:{port} within {START_DEADLINE_SECONDS:.0f} s")

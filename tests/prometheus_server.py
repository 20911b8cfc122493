"""Debian's Prometheus for live tests: a configuration scraping loopback targets, the server started
on a loopback port of its own, and its HTTP API read back.

``running_prometheus`` starts ``/usr/bin/prometheus`` and waits for ``/-/ready``; the ``PrometheusApi``
it yields queries ``/api/v1/query``, ``/api/v1/targets`` and ``/api/v1/rules``. Prometheus is not
optional here: ``make test`` installs it (``scripts/ensure-observability.sh``), so a machine without it
fails the test with a message saying so instead of skipping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest
import yaml

from tests.waiting import eventually

PROMETHEUS: Final = Path("/usr/bin/prometheus")
#: Prometheus replays no WAL on a fresh directory; on a loaded machine it still takes a few seconds.
READY_DEADLINE_SECONDS: Final = 30.0
#: How long a stopped process gets to exit before it is killed.
STOP_DEADLINE_SECONDS: Final = 20.0
#: The lines of a process's log shown when a test fails.
LOG_TAIL_LINES: Final = 40


def scrape_config(
    targets: Mapping[str, str], *, rule_files: Sequence[Path], interval: str = "1s"
) -> dict[str, Any]:
    """A prometheus.yml document: one job per ``job name -> host:port``, scraped and evaluated every
    ``interval``, with ``rule_files`` (absolute paths) loaded."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [address]}]} for job, address in targets.items()
        ],
    }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a process's log, headed by its name, for assertion messages."""
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


async def terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within ``STOP_DEADLINE_SECONDS``."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_DEADLINE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()


class PrometheusError(AssertionError):
    """Prometheus answered a query with an error (a bad expression, a failed evaluation)."""


@dataclass
class PrometheusApi:
    """The HTTP API of one running Prometheus."""

    session: aiohttp.ClientSession
    base_url: str
    process: asyncio.subprocess.Process
    log: Path

    def log_tail(self) -> str:
        return log_tail(self.log)

    async def ready(self) -> bool:
        """True once ``/-/ready`` answers 200; fails the test at once if Prometheus has exited."""
        if self.process.returncode is not None:
            raise AssertionError(f"prometheus exited with {self.process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session.get(f"{self.base_url}/-/ready") as response:
                return response.status == 200
        return False

    async def evaluate(self, expr: str) -> dict[str, Any]:
        """The API's whole answer to an instant query: ``status`` and ``data``, or ``error``."""
        async with self.session.post(f"{self.base_url}/api/v1/query", data={"query": expr}) as response:
            answer: dict[str, Any] = await response.json()
            return answer

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The samples of an instant query (``metric`` labels and ``value``); raises on an error."""
        answer = await self.evaluate(expr)
        if answer.get("status") != "success":
            raise PrometheusError(f"{expr!r}: {answer.get('errorType')}: {answer.get('error')}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    async def _data(self, path: str) -> dict[str, Any]:
        async with self.session.get(f"{self.base_url}{path}") as response:
            answer = await response.json()
        assert answer.get("status") == "success", f"{path}: {answer}"
        data: dict[str, Any] = answer["data"]
        return data

    async def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = (await self._data("/api/v1/targets"))["activeTargets"]
        return targets

    async def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = (await self._data("/api/v1/rules"))["groups"]
        return groups


def require_prometheus() -> None:
    """Fail the test, saying how to install it, if Debian's Prometheus is not installed."""
    if not PROMETHEUS.is_file():
        pytest.fail(
            f"{PROMETHEUS} is missing: install Debian's prometheus (`make test` does, through"
            " scripts/ensure-observability.sh; or `sudo apt-get install prometheus`)",
            pytrace=False,
        )


def _prepare(config: Mapping[str, Any], directory: Path) -> Path:
    """Check Prometheus is installed; write ``config`` into ``directory``; the configuration's path."""
    require_prometheus()
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return config_file


@asynccontextmanager
async def running_prometheus(
    config: Mapping[str, Any], directory: Path, port: int
) -> AsyncIterator[PrometheusApi]:
    """Prometheus on ``127.0.0.1:port`` with ``config``, its configuration, data and log in ``directory``;
    ready when this enters, stopped when it exits."""
    config_file = _prepare(config, directory)
    log = directory / "prometheus.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(PROMETHEUS),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={directory / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            api = PrometheusApi(session, f"http://127.0.0.1:{port}", process, log)
            try:
                await eventually(
                    api.ready, timeout=READY_DEADLINE_SECONDS, interval=0.1, what=f"{api.base_url}/-/ready"
                )
            except AssertionError as error:
                raise AssertionError(f"{error}\n{api.log_tail()}") from None
            yield api
    finally:
        await terminate(process)

"""What ``payments bench`` records about the machine and its processes, read from ``/proc`` (Linux).

``/proc`` rather than psutil: the two numbers needed (CPU time and peak resident set) are one line each,
and the bench then needs nothing beyond the service's own dependencies.
"""

from __future__ import annotations

import os
import platform
from contextlib import suppress
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from payments.bridges.postgres.pool import check_database
from payments.bridges.rabbitmq.inspection import check_broker
from payments.bridges.redis.client import check_redis
from payments.domain.errors import DependencyUnavailable
from payments.pipeline.bench_report import Machine
from payments.pipeline.bench_stats import ProcessUsage
from payments.pipeline.bootstrap import Resources

#: ``/proc/<pid>/stat`` counts CPU time in clock ticks.
_TICKS_PER_SECOND: Final = os.sysconf("SC_CLK_TCK")
#: utime and stime are fields 14 and 15 of ``/proc/<pid>/stat``; after the ``(comm)`` field, which may
#: itself contain spaces, they are the 12th and 13th.
_UTIME_AFTER_COMM: Final = 11
_PROC: Final = Path("/proc")


def process_usage(pid: int) -> ProcessUsage:
    """The CPU time (user + system) the process has used so far and its peak resident set (VmHWM)."""
    stat = (_PROC / str(pid) / "stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[_UTIME_AFTER_COMM]) + int(fields[_UTIME_AFTER_COMM + 1])
    return ProcessUsage(cpu_seconds=ticks / _TICKS_PER_SECOND, peak_rss_bytes=_peak_rss_bytes(pid))


def _peak_rss_bytes(pid: int) -> int:
    for line in (_PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # the kernel writes it in kB
    return 0


def machine_busy_seconds() -> float:
    """CPU time all cores together have spent busy since boot (everything but idle and I/O wait)."""
    fields = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / _TICKS_PER_SECOND


def used_between(before: ProcessUsage, after: ProcessUsage) -> ProcessUsage:
    """CPU used from ``before`` to ``after``, with the peak resident set as of ``after``."""
    return ProcessUsage(
        cpu_seconds=after.cpu_seconds - before.cpu_seconds, peak_rss_bytes=after.peak_rss_bytes
    )


async def describe_machine(resources: Resources) -> Machine:
    """Cores, CPU, memory, Python, the services' versions and the HTTP and AMQP libraries' versions."""
    return Machine(
        cores=os.cpu_count() or 1,
        cpu_model=_proc_value("cpuinfo", "model name") or platform.processor() or "unknown",
        memory_bytes=int((_proc_value("meminfo", "MemTotal") or "0 kB").split()[0]) * 1024,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        rabbitmq=await _version_of_broker(resources),
        redis=await _version_of_redis(resources),
        postgresql=await _version_of_database(resources),
        aiohttp=_installed("aiohttp"),
        aio_pika=_installed("aio-pika"),
    )


def _proc_value(name: str, key: str) -> str | None:
    with suppress(OSError):
        for line in (_PROC / name).read_text().splitlines():
            label, _, value = line.partition(":")
            if label.strip() == key:
                return value.strip()
    return None


async def _version_of_broker(resources: Resources) -> str:
    # Versions are for the record only: a probe that fails leaves "unknown", not a failed bench.
    with suppress(DependencyUnavailable):
        return str((await check_broker(resources.amqp))["version"])
    return "unknown"


async def _version_of_redis(resources: Resources) -> str:
    with suppress(DependencyUnavailable):
        return str((await check_redis(resources.redis))["version"])
    return "unknown"


async def _version_of_database(resources: Resources) -> str:
    with suppress(DependencyUnavailable):
        return str((await check_database(resources.pool))["server_version"])
    return "unknown"


def _installed(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"

"""Numbers every part of ``payments bench`` shares: nearest-rank percentiles, latency summaries (with
the curve the plot draws) and what a process used. Pure, tested without services; seconds throughout."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict

#: The ranks a summary keeps of its samples, so that the plot can draw the distribution without the
#: JSON carrying every sample: each per cent, then the tail in finer steps.
CURVE_RANKS: Final[tuple[float, ...]] = (*(float(rank) for rank in range(1, 100)), 99.5, 99.9, 100.0)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def percentile(ordered: Sequence[float], rank: float) -> float:
    """The nearest-rank percentile of ``ordered`` (ascending, not empty): the smallest sample with at
    least ``rank`` per cent of the samples at or below it. No interpolation: every value was observed."""
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[index]


class LatencySummary(_Model):
    """Latencies in seconds: the usual percentiles, and ``curve`` (the value at each of ``CURVE_RANKS``)."""

    p50: float
    p95: float
    p99: float
    max: float
    mean: float
    #: How many samples the summary is of.
    count: int = 0
    curve: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: Sequence[float]) -> LatencySummary:
        ordered = sorted(samples)
        if not ordered:
            return cls(p50=0.0, p95=0.0, p99=0.0, max=0.0, mean=0.0)
        return cls(
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
            mean=sum(ordered) / len(ordered),
            count=len(ordered),
            curve=tuple(percentile(ordered, rank) for rank in CURVE_RANKS),
        )


class Answers(_Model):
    """What a load generator's requests of one phase got back."""

    #: Requests started in the phase; each ended in an HTTP status or a transport failure.
    requests: int
    #: From the first request sent to the last answer received.
    seconds: float
    #: Answers by HTTP status ("200", "503", ...).
    statuses: dict[str, int]
    #: Requests that got no HTTP answer, by exception type (connection reset, timeout...).
    failures: dict[str, int]
    #: Over the answers with the status that means success.
    latency_seconds: LatencySummary


class ProcessUsage(_Model):
    """What a process used: CPU during the measured phase, and its resident-set peak so far."""

    cpu_seconds: float
    peak_rss_bytes: int


def errors_of(statuses: Mapping[str, int], failures: Mapping[str, int], *, ok: str) -> dict[str, int]:
    """Every request that did not get the ``ok`` status: other statuses, then transport failures."""
    wrong = {status: count for status, count in statuses.items() if status != ok}
    return {**wrong, **failures}


def share(cpu_seconds: float, wall_seconds: float) -> float:
    """CPU seconds as a share of wall seconds (1.0 = one core busy throughout)."""
    return cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]

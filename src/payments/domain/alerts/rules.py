"""The operational alert rules: pure threshold checks over counts the alerts agent keeps.

Two kinds of threshold, deliberately different at the edge:

- a **rate** fires when it *passes* its threshold: a failure rate exactly at the threshold does not
  fire, one above it does (and only once the window holds ``min_volume`` finished payments);
- a **count** fires when it *reaches* its limit: ``>= limit`` (10 webhook failures with a limit of 10
  fire).

Each check returns an ``Alert`` or ``None``; the agent raises what it gets through
``service.raise_alert``, which applies the cooldown. Queue names follow ``pipeline/topology.py``: a
dead-letter queue ends in ``.dlq`` and a retry tier has ``.retry.`` in its name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Protocol

from payments.domain.alerts.model import Alert, Severity

#: Who raises these alerts (``Alert.source``).
SOURCE: Final = "alerts"
#: The subject key of a count over every payment method (``method:all``).
ALL: Final = "all"
#: Suffix of a dead-letter queue's name, and the mark of a retry tier's (``pipeline/topology.py``).
DLQ_SUFFIX: Final = ".dlq"
RETRY_MARK: Final = ".retry."

FAILURE_RATE: Final = "payment_failure_rate"
WEBHOOK_FAILURES: Final = "webhook_failures"
REFUND_SPIKE: Final = "refund_spike"
DLQ_GROWTH: Final = "dlq_growth"
QUEUE_OVERLOAD: Final = "queue_overload"


@dataclass(frozen=True)
class QueueDepth:
    """One broker queue: messages waiting in it (ready, not yet delivered) and its consumers."""

    name: str
    messages: int
    consumers: int


class QueueGauge(Protocol):
    async def depths(self) -> Sequence[QueueDepth]:
        """The depth of every work queue and dead-letter queue; raises ``DependencyUnavailable``."""
        ...


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The limits of every rule (``settings.alerts``, in domain terms)."""

    window: timedelta
    #: A failure rate above this (not at it) fires ...
    failure_rate: Decimal
    #: ... once failed + succeeded in the window is at least this.
    min_volume: int
    #: Counts at or above these fire.
    webhook_failures: int
    refund_spike: int
    dlq_growth: int
    queue_depth: int


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(DLQ_SUFFIX)


def is_work_queue(name: str) -> bool:
    return not is_dead_letter_queue(name) and RETRY_MARK not in name


def failure_rate_alert(
    *, method: str, succeeded: int, failed: int, limits: Thresholds, at: datetime
) -> Alert | None:
    """An alert when ``failed / (failed + succeeded)`` passes the threshold (strictly above it) and
    the window holds at least ``min_volume`` finished payments. ``method`` is a payment method, or
    ``ALL`` for every payment; the overall rate is critical, one method's a warning."""
    volume = succeeded + failed
    if volume < limits.min_volume or volume == 0:
        return None
    rate = Decimal(failed) / Decimal(volume)
    if rate <= limits.failure_rate:
        return None
    what = "Payments" if method == ALL else f"{method.upper()} payments"
    return Alert(
        kind=FAILURE_RATE,
        subject=f"method:{method}",
        severity=Severity.CRITICAL if method == ALL else Severity.WARNING,
        title=(
            f"{what} are failing: {_percent(rate)} of {volume} failed in the last "
            f"{_duration(limits.window)} (threshold {_percent(limits.failure_rate)})"
        ),
        details={
            "method": method,
            "failed": failed,
            "succeeded": succeeded,
            "volume": volume,
            "rate": str(rate.quantize(Decimal("0.0001"))),
            "threshold": str(limits.failure_rate),
            "minVolume": limits.min_volume,
            "windowSeconds": _seconds(limits.window),
        },
        since=at - limits.window,
        raised_at=at,
        source=SOURCE,
    )


def webhook_failures_alert(*, provider: str, failures: int, limits: Thresholds, at: datetime) -> Alert | None:
    """An alert when ``failures`` webhooks of ``provider`` failed in the window: fires at the limit."""
    if failures < limits.webhook_failures:
        return None
    return Alert(
        kind=WEBHOOK_FAILURES,
        subject=f"webhooks:{provider}",
        severity=Severity.WARNING,
        title=(
            f"{failures} {provider.capitalize()} webhooks failed processing in the last "
            f"{_duration(limits.window)} (limit {limits.webhook_failures})"
        ),
        details={
            "provider": provider,
            "failures": failures,
            "limit": limits.webhook_failures,
            "windowSeconds": _seconds(limits.window),
        },
        since=at - limits.window,
        raised_at=at,
        source=SOURCE,
    )


def refund_spike_alert(*, refunds: int, limits: Thresholds, at: datetime) -> Alert | None:
    """An alert when ``refunds`` refunds were requested in the window: fires at the limit."""
    if refunds < limits.refund_spike:
        return None
    return Alert(
        kind=REFUND_SPIKE,
        subject=f"refunds:{ALL}",
        severity=Severity.WARNING,
        title=(
            f"{refunds} refunds requested in the last {_duration(limits.window)} "
            f"(limit {limits.refund_spike})"
        ),
        details={"refunds": refunds, "limit": limits.refund_spike, "windowSeconds": _seconds(limits.window)},
        since=at - limits.window,
        raised_at=at,
        source=SOURCE,
    )


def dlq_growth_alerts(
    *,
    previous: Mapping[str, int],
    current: Sequence[QueueDepth],
    previous_at: datetime,
    limits: Thresholds,
    at: datetime,
) -> list[Alert]:
    """An alert per dead-letter queue that gained at least ``dlq_growth`` messages since the previous
    poll (``previous``: depth by queue name). A queue absent from ``previous`` has no baseline yet and
    never fires; a queue someone drained (negative growth) does not either."""
    alerts = []
    for depth in current:
        if not is_dead_letter_queue(depth.name) or depth.name not in previous:
            continue
        growth = depth.messages - previous[depth.name]
        if growth < limits.dlq_growth:
            continue
        alerts.append(
            Alert(
                kind=DLQ_GROWTH,
                subject=f"queue:{depth.name}",
                severity=Severity.WARNING,
                title=(
                    f"Dead-letter queue {depth.name} gained {growth} messages since "
                    f"{previous_at:%H:%M:%S} UTC (now {depth.messages})"
                ),
                details={
                    "queue": depth.name,
                    "growth": growth,
                    "previous": previous[depth.name],
                    "messages": depth.messages,
                    "limit": limits.dlq_growth,
                    "previousAt": previous_at.isoformat(),
                },
                since=previous_at,
                raised_at=at,
                source=SOURCE,
            )
        )
    return alerts


def queue_overload_alerts(*, depths: Sequence[QueueDepth], limits: Thresholds, at: datetime) -> list[Alert]:
    """An alert per work queue (not a DLQ, not a retry tier) holding at least ``queue_depth`` messages;
    critical when nobody consumes it, since then the backlog only grows."""
    alerts = []
    for depth in depths:
        if not is_work_queue(depth.name) or depth.messages < limits.queue_depth:
            continue
        idle = depth.consumers == 0
        alerts.append(
            Alert(
                kind=QUEUE_OVERLOAD,
                subject=f"queue:{depth.name}",
                severity=Severity.CRITICAL if idle else Severity.WARNING,
                title=(
                    f"Queue {depth.name} holds {depth.messages} waiting messages "
                    f"(limit {limits.queue_depth}, {depth.consumers} consumers)"
                ),
                details={
                    "queue": depth.name,
                    "messages": depth.messages,
                    "consumers": depth.consumers,
                    "limit": limits.queue_depth,
                },
                since=at,
                raised_at=at,
                source=SOURCE,
            )
        )
    return alerts


def _percent(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.1')).normalize():f}%"


def _seconds(window: timedelta) -> int:
    return int(window.total_seconds())


def _duration(window: timedelta) -> str:
    seconds = _seconds(window)
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"

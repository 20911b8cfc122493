"""The operational alert rules at their edges: rates fire above the threshold, counts at the limit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from payments.domain.alerts.model import Severity
from payments.domain.alerts.rules import (
    ALL,
    QueueDepth,
    Thresholds,
    dlq_growth_alerts,
    failure_rate_alert,
    is_dead_letter_queue,
    is_work_queue,
    queue_overload_alerts,
    refund_spike_alert,
    webhook_failures_alert,
)

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LIMITS = Thresholds(
    window=timedelta(minutes=5),
    failure_rate=Decimal("0.5"),
    min_volume=10,
    webhook_failures=10,
    refund_spike=50,
    dlq_growth=3,
    queue_depth=1000,
)


def rate(succeeded: int, failed: int, method: str = "upi"):
    return failure_rate_alert(method=method, succeeded=succeeded, failed=failed, limits=LIMITS, at=AT)


def test_a_failure_rate_exactly_at_the_threshold_does_not_fire():
    assert rate(succeeded=5, failed=5) is None


def test_a_failure_rate_just_above_the_threshold_fires_with_the_numbers_behind_it():
    alert = rate(succeeded=5, failed=6)

    assert alert is not None
    assert (alert.kind, alert.subject, alert.severity) == (
        "payment_failure_rate",
        "method:upi",
        Severity.WARNING,
    )
    assert alert.details == {
        "method": "upi",
        "failed": 6,
        "succeeded": 5,
        "volume": 11,
        "rate": "0.5455",
        "threshold": "0.5",
        "minVolume": 10,
        "windowSeconds": 300,
    }
    assert alert.title == "UPI payments are failing: 54.5% of 11 failed in the last 5 minutes (threshold 50%)"
    assert (alert.since, alert.raised_at, alert.source) == (AT - timedelta(minutes=5), AT, "alerts")


def test_a_high_failure_rate_below_the_minimum_volume_does_not_fire():
    assert rate(succeeded=0, failed=9) is None


def test_a_high_failure_rate_at_the_minimum_volume_fires():
    assert rate(succeeded=0, failed=10) is not None


def test_no_payments_at_all_never_fire_even_with_no_minimum_volume():
    limits = replace(LIMITS, min_volume=0)

    assert failure_rate_alert(method="upi", succeeded=0, failed=0, limits=limits, at=AT) is None


def test_the_overall_failure_rate_is_critical_and_named_for_every_method():
    alert = rate(succeeded=1, failed=10, method=ALL)

    assert alert is not None
    assert (alert.subject, alert.severity) == ("method:all", Severity.CRITICAL)
    assert alert.title.startswith("Payments are failing: 90.9% of 11")


def test_webhook_failures_fire_at_the_limit_and_not_below():
    below = webhook_failures_alert(provider="cashfree", failures=9, limits=LIMITS, at=AT)
    at_limit = webhook_failures_alert(provider="cashfree", failures=10, limits=LIMITS, at=AT)

    assert below is None
    assert at_limit is not None
    assert (at_limit.kind, at_limit.subject) == ("webhook_failures", "webhooks:cashfree")
    assert at_limit.details == {"provider": "cashfree", "failures": 10, "limit": 10, "windowSeconds": 300}
    assert at_limit.title == "10 Cashfree webhooks failed processing in the last 5 minutes (limit 10)"


def test_refunds_fire_at_the_limit_and_not_below():
    assert refund_spike_alert(refunds=49, limits=LIMITS, at=AT) is None
    alert = refund_spike_alert(refunds=50, limits=LIMITS, at=AT)

    assert alert is not None
    assert (alert.kind, alert.subject, alert.details["refunds"]) == ("refund_spike", "refunds:all", 50)
    assert alert.since == AT - timedelta(minutes=5)


def test_a_one_minute_window_reads_as_the_last_minute_and_odd_windows_in_seconds():
    one_minute = replace(LIMITS, window=timedelta(minutes=1))
    odd = replace(LIMITS, window=timedelta(seconds=90))

    assert "in the last minute " in refund_spike_alert(refunds=50, limits=one_minute, at=AT).title  # type: ignore[union-attr]
    assert "in the last 90 seconds " in refund_spike_alert(refunds=50, limits=odd, at=AT).title  # type: ignore[union-attr]


def dlq(previous: dict[str, int], *current: QueueDepth):
    return dlq_growth_alerts(
        previous=previous, current=current, previous_at=AT - timedelta(seconds=30), limits=LIMITS, at=AT
    )


def test_dlq_growth_fires_at_the_limit_and_not_below():
    below = dlq({"a.dlq": 5}, QueueDepth("a.dlq", messages=7, consumers=0))
    [alert] = dlq({"a.dlq": 5}, QueueDepth("a.dlq", messages=8, consumers=0))

    assert below == []
    assert (alert.kind, alert.subject) == ("dlq_growth", "queue:a.dlq")
    assert alert.details == {
        "queue": "a.dlq",
        "growth": 3,
        "previous": 5,
        "messages": 8,
        "limit": 3,
        "previousAt": (AT - timedelta(seconds=30)).isoformat(),
    }
    assert alert.since == AT - timedelta(seconds=30)
    assert alert.title == "Dead-letter queue a.dlq gained 3 messages since 09:59:30 UTC (now 8)"


def test_a_dlq_without_a_previous_depth_or_that_was_drained_does_not_fire():
    assert dlq({}, QueueDepth("a.dlq", messages=100, consumers=0)) == []
    assert dlq({"a.dlq": 100}, QueueDepth("a.dlq", messages=0, consumers=0)) == []


def test_dlq_growth_ignores_work_queues():
    assert dlq({"a": 0}, QueueDepth("a", messages=100, consumers=0)) == []


def test_queue_overload_fires_at_the_limit_for_work_queues_only():
    depths = [
        QueueDepth("a", messages=999, consumers=1),
        QueueDepth("b", messages=1000, consumers=2),
        QueueDepth("c", messages=5000, consumers=0),
        QueueDepth("b.dlq", messages=5000, consumers=0),
        QueueDepth("b.retry.30s", messages=5000, consumers=0),
    ]

    alerts = queue_overload_alerts(depths=depths, limits=LIMITS, at=AT)

    assert [(a.subject, a.severity) for a in alerts] == [
        ("queue:b", Severity.WARNING),
        ("queue:c", Severity.CRITICAL),
    ]
    assert alerts[0].details == {"queue": "b", "messages": 1000, "consumers": 2, "limit": 1000}
    assert alerts[0].title == "Queue b holds 1000 waiting messages (limit 1000, 2 consumers)"


def test_queue_names_are_told_apart_by_the_topology_conventions():
    assert is_dead_letter_queue("payments.commands.dlq")
    assert not is_work_queue("payments.commands.dlq")
    assert not is_work_queue("payments.commands.retry.2m")
    assert is_work_queue("payments.commands")

"""The sandbox's pure parts: clock, transitions, exact JSON, rate window, config checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.bridges.cashfree.sandbox import SandboxConfig
from payments.bridges.cashfree.sandbox.clock import IST, SandboxClock, cashfree_time, parse_time
from payments.bridges.cashfree.sandbox.jsonbody import dumps, loads
from payments.bridges.cashfree.sandbox.ratelimit import Limit, LimitKind, RateLimiter
from payments.bridges.cashfree.sandbox.states import (
    DELIVERY_TRANSITIONS,
    ORDER_TRANSITIONS,
    DeliveryState,
    DeliveryTrigger,
    OrderStatus,
    OrderTrigger,
    transition,
)
from payments.domain.errors import IllegalTransition

START = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


class FakeTicks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_runs_at_its_speed_and_adds_advances():
    ticks = FakeTicks()
    clock = SandboxClock(speed=60, wall=lambda: START, monotonic=ticks)

    ticks.now += 2
    clock.advance(30)

    assert clock.now() == START + timedelta(seconds=150)
    assert clock.advanced_seconds == 30


def test_the_clock_refuses_to_go_back():
    clock = SandboxClock(speed=1)

    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_cashfree_times_are_ist_to_the_second():
    assert cashfree_time(START) == "2025-01-31T17:30:00+05:30"


def test_a_bare_date_covers_the_whole_ist_day():
    start, end = parse_time("2025-01-31"), parse_time("2025-01-31", end_of_day=True)

    assert start == datetime(2025, 1, 31, tzinfo=IST)
    assert end == datetime(2025, 2, 1, tzinfo=IST) - timedelta(microseconds=1)
    assert parse_time("2025-01-31T10:00:00") == datetime(2025, 1, 31, 10, tzinfo=IST)


def test_a_transition_outside_the_table_is_illegal():
    assert transition(ORDER_TRANSITIONS, OrderStatus.ACTIVE, OrderTrigger.PAY) is OrderStatus.PAID
    with pytest.raises(IllegalTransition):
        transition(ORDER_TRANSITIONS, OrderStatus.PAID, OrderTrigger.EXPIRE)
    with pytest.raises(IllegalTransition):
        transition(DELIVERY_TRANSITIONS, DeliveryState.DELIVERED, DeliveryTrigger.RETRY)


def test_json_keeps_amounts_digit_for_digit():
    body = dumps({"amount": Decimal("2.00"), "items": [Decimal("170.00"), None, True, 'x"y'], "n": 3})

    assert body == b'{"amount":2.00,"items":[170.00,null,true,"x\\"y"],"n":3}'
    assert loads(body)["amount"] == Decimal("2.00")


def test_the_rate_window_forgets_calls_older_than_a_minute():
    limiter, limit = RateLimiter(), Limit("bucket", 2, LimitKind.APP_ID)

    first = limiter.take(limit, "app", START)
    limiter.take(limit, "app", START + timedelta(seconds=10))
    refused = limiter.take(limit, "app", START + timedelta(seconds=20))
    later = limiter.take(limit, "app", START + timedelta(seconds=60))

    assert (first.remaining, first.exceeded) == (1, False)
    assert (refused.exceeded, refused.retry) == (True, 40)
    assert later.exceeded is False


@pytest.mark.parametrize("field", [{"clock_speed": 0}, {"attempt_delay_seconds": -1}])
def test_the_config_refuses_impossible_timing(field):
    with pytest.raises(ValueError, match="must"):
        SandboxConfig(app_id="a", secret_key="s", webhook_url="http://x", **field)

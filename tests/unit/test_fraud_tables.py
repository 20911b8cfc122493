"""FraudTables and TableFraudScreen over the memory table store and a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.agents.fraud_tables import FraudTables, TableFraudScreen
from payments.domain.fraud.rules import (
    DEFAULT_RULES,
    FailureRule,
    FraudRules,
    Measure,
    SpikeRule,
    SpreadRule,
    Subject,
    VelocityRule,
)
from payments.domain.fraud.screen import ALLOWED, PaymentAttempt
from payments.domain.fraud.signals import Verdict
from payments.domain.money import Money
from payments.tables import MemoryWindowStore
from tests.fakes.context import fake_digest
from tests.fakes.gateway import FixedClock

NOW = datetime(2026, 11, 26, 10, 0, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def velocity(name: str, subject: Subject, limit: int, *, window: int = 60, **extra) -> VelocityRule:
    return VelocityRule.model_validate(
        {"name": name, "subject": subject, "window_seconds": window, "limit": limit, **extra}
    )


RULES = FraudRules(
    velocity=(
        velocity("ip_per_minute", Subject.IP, 3),
        velocity("ip_per_minute_review", Subject.IP, 2, verdict=Verdict.REVIEW),
        velocity("user_amount", Subject.USER, 1000, measure=Measure.AMOUNT),
        velocity("device_per_minute", Subject.DEVICE, 2),
        velocity("email_per_minute", Subject.EMAIL, 2),
        velocity("phone_per_minute", Subject.PHONE, 2),
    ),
    failures=(
        FailureRule(name="user_failures", subject=Subject.USER, window_seconds=3600, limit=2),
        FailureRule(name="ip_failures", subject=Subject.IP, window_seconds=3600, limit=2),
    ),
    spread=(
        SpreadRule(name="users_per_ip", subject=Subject.IP, of=Subject.USER, window_seconds=3600, limit=2),
    ),
    spike=SpikeRule(window_seconds=60, baseline_windows=3, factor=Decimal(2), min_count=3),
)


class World:
    def __init__(self, rules: FraudRules = RULES) -> None:
        self.store = MemoryWindowStore()
        self.clock = FixedClock(NOW)
        self.tables = FraudTables(self.store, rules=rules, clock=self.clock, digest=fake_digest)
        self.screen = TableFraudScreen(self.tables)


def attempt(
    n: int,
    *,
    user: str = "user-1",
    ip: str | None = "203.0.113.7",
    amount: str = "1.00",
    currency: str = "INR",
    at: datetime = NOW,
    **extra,
) -> PaymentAttempt:
    return PaymentAttempt(
        payment_id=f"pay_{n}",
        user_id=user,
        amount=Money.of(amount, currency),
        at=at,
        ip_address=ip,
        **extra,
    )


@pytest.fixture
def world() -> World:
    return World()


async def test_a_burst_from_one_ip_is_allowed_up_to_the_limit_then_reviewed_then_blocked(world):
    verdicts = [(await world.screen.assess(attempt(n, user=f"u{n % 2}"))).verdict for n in range(5)]

    assert verdicts == [Verdict.ALLOW, Verdict.ALLOW, Verdict.REVIEW, Verdict.BLOCK, Verdict.BLOCK]


async def test_each_rule_observes_the_attempt_itself_included(world):
    first = await world.tables.record_attempt(attempt(1))
    second = await world.tables.record_attempt(attempt(2))

    assert first.values["ip_per_minute"] == 1
    assert second.values["ip_per_minute"] == 2
    assert second.values["ip_per_minute_review"] == 2
    assert second.values["user_amount"] == 200  # 2 x 1.00 INR in paise
    assert second.values["users_per_ip"] == 1
    assert (second.values["user_failures"], second.values["ip_failures"]) == (0, 0)


async def test_the_same_payment_counts_once_however_often_it_is_screened(world):
    for _ in range(5):
        observed = await world.tables.record_attempt(attempt(1))

    assert observed.values["ip_per_minute"] == 1
    assert observed.values["user_amount"] == 100
    assert (await world.tables.spike(NOW))[0] == 1


async def test_blocked_attempts_count_too_so_a_burst_that_keeps_going_stays_blocked(world):
    for n in range(10):
        assessment = await world.screen.assess(attempt(n))

    assert assessment.verdict is Verdict.BLOCK
    [signal] = [s for s in assessment.signals if s.rule == "ip_per_minute"]
    assert signal.observed == 10


async def test_the_window_slides_past_old_payments(world):
    for n in range(4):
        await world.tables.record_attempt(attempt(n))

    later = NOW + 60 * SECOND
    world.clock.current = later
    observed = await world.tables.record_attempt(attempt(9, at=later))

    assert observed.values["ip_per_minute"] == 1


async def test_amounts_add_up_per_subject_and_currency_in_minor_units(world):
    await world.tables.record_attempt(attempt(1, amount="600.00", ip=None))
    inr = await world.tables.record_attempt(attempt(2, amount="400.01", ip=None))
    usd = await world.tables.record_attempt(attempt(3, amount="5.00", currency="USD", ip=None))

    assert inr.values["user_amount"] == 100_001
    assert usd.values["user_amount"] == 500
    assessment = await world.screen.assess(attempt(4, amount="0.01", ip=None))
    assert [s.rule for s in assessment.signals] == ["user_amount"]
    assert assessment.signals[0].observed == 100_002


async def test_one_ip_for_many_users_is_counted_as_distinct_users(world):
    for n, user in enumerate(["a", "b", "a", "c"]):
        observed = await world.tables.record_attempt(attempt(n, user=user, at=NOW - (10 - n) * SECOND * 60))

    assert observed.values["users_per_ip"] == 3


async def test_failures_count_per_user_and_ip_once_per_failure(world):
    await world.tables.record_failure("pay_1", "user-1", "203.0.113.7", NOW, failure_id="evt_pay_1_v3")
    await world.tables.record_failure("pay_1", "user-1", "203.0.113.7", NOW, failure_id="evt_pay_1_v3")
    await world.tables.record_failure("pay_1", "user-1", "203.0.113.7", NOW, failure_id="evt_pay_1_v5")
    await world.tables.record_failure("pay_2", "user-1", None, NOW)

    observed = await world.tables.record_attempt(attempt(3))

    assert (observed.values["user_failures"], observed.values["ip_failures"]) == (3, 2)
    assessment = await world.screen.assess(attempt(4))
    assert "user_failures" in assessment.reasons
    assert "ip_failures" not in assessment.reasons


async def test_subjects_are_the_user_ip_device_and_digests_of_email_and_phone(world):
    full = attempt(1, device_fingerprint="dev-1", email="Asha@Example.com", phone="9876543210")

    assert world.tables.subjects_of(full) == {
        "user": "user-1",
        "ip": "203.0.113.7",
        "device": "dev-1",
        "email": fake_digest("Asha@Example.com", kind="email"),
        "phone": fake_digest("9876543210", kind="phone"),
    }
    assert "asha" not in str(world.tables.subjects_of(full)).lower()
    assert world.tables.subjects_of(attempt(2, ip=None)) == {"user": "user-1"}


async def test_emails_phones_and_devices_are_counted_by_their_keys(world):
    for n in range(3):
        assessment = await world.screen.assess(
            attempt(
                n,
                user=f"u{n}",
                ip=None,
                device_fingerprint="dev-1",
                email="a@example.com",
                phone="9876543210",
            )
        )

    assert set(assessment.reasons) == {"device_per_minute", "email_per_minute", "phone_per_minute"}
    assert assessment.subjects["email"] == fake_digest("a@example.com", kind="email")


async def test_attempts_without_an_ip_or_device_skip_those_rules(world):
    for n in range(10):
        observed = await world.tables.record_attempt(attempt(n, user=f"u{n}", ip=None))

    assert "ip_per_minute" not in observed.values
    assert "device_per_minute" not in observed.values
    assert "users_per_ip" not in observed.values
    assert "ip_failures" not in observed.values
    assert (await world.screen.assess(attempt(11, user="u11", ip=None))).verdict is Verdict.ALLOW


async def test_recording_from_the_subjects_an_event_carries_is_the_same_as_screening(world):
    first = attempt(1, email="a@example.com")
    observed = await world.tables.record_attempt(first)

    again = await world.tables.record(
        payment_id="pay_1", subjects=observed.subjects, amount=first.amount, at=first.at
    )
    rebuilt_world = World()
    rebuilt = await rebuilt_world.tables.record(
        payment_id="pay_1", subjects=observed.subjects, amount=first.amount, at=first.at
    )

    assert again == observed
    assert rebuilt == observed


async def test_the_spike_reads_the_current_volume_window_and_the_baseline_before_it(world):
    window = NOW.replace(second=0)
    for n, at in enumerate(
        [window - 150 * SECOND, window - 90 * SECOND, window - 80 * SECOND, window + SECOND]
    ):
        await world.tables.record_attempt(attempt(n, user=f"u{n}", ip=None, at=at))

    assert await world.tables.spike(NOW) == (1, [1, 2, 0])
    assert world.tables.spike_window_start(NOW) == window


async def test_without_a_spike_rule_there_is_no_volume():
    world = World(RULES.model_copy(update={"spike": None}))
    await world.tables.record_attempt(attempt(1))

    assert await world.tables.spike(NOW) == (0, [])


async def test_a_switched_off_screen_allows_everything_and_counts_nothing(world):
    off = TableFraudScreen(world.tables, enabled=False)

    for n in range(10):
        assert await off.assess(attempt(n)) is ALLOWED

    observed = await world.tables.record_attempt(attempt(99))
    assert observed.values["ip_per_minute"] == 1


async def test_the_default_rules_build_their_tables_and_allow_one_ordinary_payment():
    world = World(DEFAULT_RULES)

    assessment = await world.screen.assess(
        attempt(1, device_fingerprint="d", email="a@b.co", phone="9876543210")
    )

    assert (assessment.verdict, assessment.score) == (Verdict.ALLOW, 0)
    assert set(assessment.subjects) == {"user", "ip", "device", "email", "phone"}

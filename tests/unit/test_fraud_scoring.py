"""Scoring: the rules judge what the tables observed (pure; the tables themselves are tested apart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.domain.alerts.model import Severity
from payments.domain.fraud.rules import (
    FailureRule,
    FraudRules,
    Measure,
    SpikeRule,
    SpreadRule,
    Subject,
    VelocityRule,
)
from payments.domain.fraud.scoring import (
    Observations,
    assess,
    fraud_alert,
    judge_spike,
    minor_units,
    signal_score,
    spike_alert,
    spike_threshold,
    threshold_of,
)
from payments.domain.fraud.screen import PaymentAttempt
from payments.domain.fraud.signals import Verdict
from payments.domain.money import Money

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ATTEMPT = PaymentAttempt(
    payment_id="pay_1", user_id="user-1", amount=Money.of("499.00", "INR"), at=AT, ip_address="203.0.113.7"
)
SUBJECTS = {"user": "user-1", "ip": "203.0.113.7"}

IP_PER_MINUTE = VelocityRule(name="ip_per_minute", subject=Subject.IP, window_seconds=60, limit=Decimal(10))
IP_PER_DAY = VelocityRule(
    name="ip_per_day", subject=Subject.IP, window_seconds=86_400, limit=Decimal(500), verdict=Verdict.REVIEW
)
USER_AMOUNT = VelocityRule(
    name="user_amount_per_day",
    subject=Subject.USER,
    measure=Measure.AMOUNT,
    window_seconds=86_400,
    limit=Decimal(10_000),
)
USER_FAILURES = FailureRule(name="user_failures", subject=Subject.USER, window_seconds=3600, limit=3)
USERS_PER_IP = SpreadRule(
    name="users_per_ip",
    subject=Subject.IP,
    of=Subject.USER,
    window_seconds=3600,
    limit=5,
    verdict=Verdict.REVIEW,
)
RULES = FraudRules(
    velocity=(IP_PER_MINUTE, IP_PER_DAY, USER_AMOUNT), failures=(USER_FAILURES,), spread=(USERS_PER_IP,)
)


def observed(**values: int) -> Observations:
    return Observations(values=values, subjects=SUBJECTS)


def test_nothing_over_its_limit_is_allowed_with_score_zero_and_no_signals():
    assessment = assess(RULES, ATTEMPT, observed(ip_per_minute=10, ip_per_day=500, users_per_ip=5))

    assert (assessment.verdict, assessment.score, list(assessment.signals)) == (Verdict.ALLOW, 0, [])
    assert assessment.subjects == SUBJECTS


def test_one_past_the_limit_fires_the_rule_with_its_verdict_and_evidence():
    assessment = assess(RULES, ATTEMPT, observed(ip_per_minute=11))

    assert assessment.verdict is Verdict.BLOCK
    assert assessment.score == 100
    [signal] = assessment.signals
    assert signal.rule == "ip_per_minute"
    assert (signal.subject_kind, signal.subject) == ("ip", "203.0.113.7")
    assert (signal.observed, signal.threshold, signal.window_seconds) == (11, 10, 60)
    assert (signal.payment_id, signal.user_id, signal.created_at) == ("pay_1", "user-1", AT)
    assert signal.details == {"type": "velocity", "measure": "count", "limit": "10"}
    assert assessment.reasons == ["ip_per_minute"]


def test_the_strictest_fired_verdict_wins_and_every_fired_rule_has_a_signal():
    assessment = assess(RULES, ATTEMPT, observed(ip_per_minute=11, ip_per_day=501, users_per_ip=6))

    assert assessment.verdict is Verdict.BLOCK
    assert [s.rule for s in assessment.signals] == ["ip_per_minute", "ip_per_day", "users_per_ip"]
    assert [s.verdict for s in assessment.signals] == [Verdict.BLOCK, Verdict.REVIEW, Verdict.REVIEW]


def test_a_review_rule_scores_fifty_just_past_its_limit_and_more_the_further_past():
    just_past = assess(RULES, ATTEMPT, observed(ip_per_day=501))
    far_past = assess(RULES, ATTEMPT, observed(ip_per_day=750))

    assert (just_past.verdict, just_past.score) == (Verdict.REVIEW, 50)
    assert far_past.score == 50 + 50 * 250 // 500
    assert just_past.score < far_past.score < 100


@pytest.mark.parametrize(
    ("verdict", "observed", "threshold", "score"),
    [
        (Verdict.REVIEW, 11, 10, 55),
        (Verdict.REVIEW, 20, 10, 99),
        (Verdict.REVIEW, 1000, 10, 99),
        (Verdict.ALLOW, 11, 10, 6),
        (Verdict.ALLOW, 1000, 10, 49),
        (Verdict.BLOCK, 11, 10, 100),
        (Verdict.REVIEW, 1, 0, 99),
    ],
)
def test_signal_scores_stay_in_their_verdicts_band(verdict, observed, threshold, score):
    assert signal_score(verdict, observed=observed, threshold=threshold) == score


def test_amount_rules_compare_minor_units_of_the_payments_currency():
    assert minor_units(Money.of("499.00", "INR")) == 49_900
    assert minor_units(Money.of("499", "JPY")) == 499
    assert threshold_of(USER_AMOUNT, "INR") == 1_000_000
    assert threshold_of(USER_AMOUNT, "JPY") == 10_000

    at_limit = assess(RULES, ATTEMPT, observed(user_amount_per_day=1_000_000))
    past_limit = assess(RULES, ATTEMPT, observed(user_amount_per_day=1_000_001))

    assert at_limit.verdict is Verdict.ALLOW
    [signal] = past_limit.signals
    assert (signal.observed, signal.threshold) == (1_000_001, 1_000_000)
    assert signal.details == {"type": "velocity", "measure": "amount", "limit": "10000", "currency": "INR"}


def test_a_fractional_limit_fires_at_the_first_whole_count_above_it():
    rule = VelocityRule(name="r", subject=Subject.USER, window_seconds=60, limit=Decimal("2.5"))
    rules = FraudRules(velocity=(rule,))

    assert assess(rules, ATTEMPT, observed(r=2)).verdict is Verdict.ALLOW
    assert assess(rules, ATTEMPT, observed(r=3)).verdict is Verdict.BLOCK


def test_failure_and_spread_rules_fire_past_their_limits():
    assessment = assess(RULES, ATTEMPT, observed(user_failures=4, users_per_ip=6))

    failure, spread = assessment.signals
    assert (failure.rule, failure.subject_kind, failure.subject) == ("user_failures", "user", "user-1")
    assert failure.details == {"type": "failures", "limit": "3"}
    assert (spread.rule, spread.subject_kind, spread.subject) == ("users_per_ip", "ip", "203.0.113.7")
    assert spread.details == {"type": "spread", "of": "user", "limit": "5"}


def test_a_rule_whose_subject_the_attempt_lacks_cannot_fire():
    without_ip = Observations(values={"ip_per_minute": 99}, subjects={"user": "user-1"})

    assert assess(RULES, ATTEMPT, without_ip).verdict is Verdict.ALLOW


def test_the_fraud_alert_of_a_block_is_critical_and_says_what_happened_without_personal_data():
    [signal] = assess(RULES, ATTEMPT, observed(ip_per_minute=11)).signals

    alert = fraud_alert(signal, raised_at=AT)

    assert (alert.kind, alert.subject, alert.severity) == ("fraud_block", "ip:203.0.113.7", Severity.CRITICAL)
    assert alert.title == "Payments from ip 203.0.113.7 blocked: 11 in 60 s (limit 10)"
    assert alert.since == AT - timedelta(seconds=60)
    assert alert.details["rule"] == "ip_per_minute"
    assert (alert.details["observed"], alert.details["limit"]) == (11, 10)
    assert (alert.details["windowSeconds"], alert.details["paymentId"]) == (60, "pay_1")
    assert alert.source == "fraud"


def test_fraud_alert_titles_read_money_failures_spread_and_digests():
    digest = "ab" * 32
    attempt = PaymentAttempt(payment_id="pay_1", user_id="user-1", amount=Money.of("1", "INR"), at=AT)
    email_rule = VelocityRule(
        name="email_per_hour",
        subject=Subject.EMAIL,
        window_seconds=3600,
        limit=Decimal(2),
        verdict=Verdict.REVIEW,
    )
    rules = FraudRules(velocity=(USER_AMOUNT, email_rule), failures=(USER_FAILURES,), spread=(USERS_PER_IP,))
    subjects = {**SUBJECTS, "email": digest}
    values = {"user_amount_per_day": 1_250_050, "email_per_hour": 3, "user_failures": 4, "users_per_ip": 6}

    signals = assess(rules, attempt, Observations(values=values, subjects=subjects)).signals
    titles = [fraud_alert(s, raised_at=AT).title for s in signals]

    assert titles == [
        "Payments from user user-1 blocked: 12500.50 INR in 86400 s (limit 10000.00 INR)",
        f"Payments from email {digest[:12]} flagged for review: 3 in 3600 s (limit 2)",
        "Failed payments from user user-1 blocked: 4 in 3600 s (limit 3)",
        "Payments from ip 203.0.113.7 flagged for review: 6 distinct users in 3600 s (limit 5)",
    ]
    assert fraud_alert(signals[1], raised_at=AT).severity is Severity.WARNING
    assert fraud_alert(signals[1], raised_at=AT).kind == "fraud_review"


SPIKE = SpikeRule(window_seconds=60, baseline_windows=4, factor=Decimal(3), min_count=10)


@pytest.mark.parametrize(
    ("baseline", "threshold"),
    [
        ([], 9),  # nothing before: only the minimum counts
        ([0, 0, 0, 0], 9),
        ([4, 4, 4, 4], 12),  # 3 x 4
        ([2, 3, 5, 5], 11),  # 3 x 3.75 = 11.25, floored
        ([100, 4, 4, 4, 4], 12),  # only the last baseline_windows count
    ],
)
def test_the_spike_threshold_is_factor_times_the_baseline_average_and_at_least_the_minimum(
    baseline, threshold
):
    assert spike_threshold(SPIKE, baseline) == threshold


def test_a_spike_past_its_threshold_is_a_review_signal_about_all_payments_dated_at_its_window():
    window_start = AT - timedelta(seconds=30)

    quiet = judge_spike(SPIKE, current=12, baseline=[4, 4, 4, 4], window_start=window_start)
    spike = judge_spike(SPIKE, current=13, baseline=[4, 4, 4, 4], window_start=window_start)

    assert quiet is None
    assert spike is not None
    assert (spike.rule, spike.verdict, spike.subject_kind, spike.subject) == (
        "volume_spike",
        Verdict.REVIEW,
        "overall",
        "all",
    )
    assert (spike.payment_id, spike.user_id) == (None, None)
    assert (spike.observed, spike.threshold, spike.window_seconds, spike.created_at) == (
        13,
        12,
        60,
        window_start,
    )
    assert spike.details["baselineAverage"] == "4.00"


def test_the_spike_alert_is_a_warning_about_overall_volume():
    window_start = AT - timedelta(seconds=30)
    spike = judge_spike(SPIKE, current=13, baseline=[4, 4, 4, 4], window_start=window_start)
    assert spike is not None

    alert = spike_alert(spike, raised_at=AT)

    assert (alert.kind, alert.subject, alert.severity) == ("payment_spike", "overall:all", Severity.WARNING)
    assert alert.title == "Payment volume spike: 13 payments in 60 s (baseline 4.00 per window, limit 12)"
    assert (alert.since, alert.raised_at) == (window_start, AT)
    assert alert.details["paymentId"] is None

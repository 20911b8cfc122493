"""Judging a payment by the rules, from what the windowed tables observed for it (pure; no I/O).

A rule fires when its observed value, the payment being screened included, is over its limit. Every
limit becomes an integer ``threshold`` first (counts as they are; money limits in minor units of the
payment's currency, so 10000 INR is 1000000 paise), and a rule fires when ``observed > threshold``.

The score of one fired rule sits in its verdict's band and grows with how far past the threshold the
observation is::

    excess = (observed - threshold) / max(threshold, 1)
    score  = min(band_high, band_low + floor(50 * excess))
    bands:  allow (a watch-only rule) 1-49, review 50-99, block 100

so a review rule just past its limit scores 50 and one at double its limit scores 99. A payment's
score is the highest of its fired rules (0 when none fired); its verdict is the strictest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

from payments.domain.alerts.model import Alert, Severity
from payments.domain.fraud.rules import FailureRule, FraudRules, Measure, SpikeRule, SpreadRule, VelocityRule
from payments.domain.fraud.screen import Assessment, PaymentAttempt
from payments.domain.fraud.signals import FraudSignal, Verdict
from payments.domain.money import Money

#: A rule judged per payment (the spike rule judges the traffic as a whole instead).
PaymentRule = VelocityRule | FailureRule | SpreadRule

#: (lowest, highest) score of a fired rule, per verdict.
_BANDS: Final = {Verdict.ALLOW: (1, 49), Verdict.REVIEW: (50, 99), Verdict.BLOCK: (100, 100)}
#: Score points per whole threshold of excess.
_SLOPE: Final = 50
#: How alert titles say what happened to the payments.
_VERBS: Final = {Verdict.ALLOW: "seen", Verdict.REVIEW: "flagged for review", Verdict.BLOCK: "blocked"}
#: Subjects kept as keyed digests: titles show a prefix, enough to tell them apart.
_DIGESTED: Final = frozenset({"email", "phone"})
#: Where fraud alerts come from (``Alert.source``).
SOURCE: Final = "fraud"
#: What the spike rule's signal and alert are about: all payments.
OVERALL_KIND: Final = "overall"
OVERALL_SUBJECT: Final = "all"


@dataclass(frozen=True, kw_only=True)
class Observations:
    """What the tables held for one attempt, the attempt included: rule name -> observed value.

    Velocity counts are payments and amounts are minor units of the attempt's currency; failure
    rules count failed payments; spread rules count distinct subjects. A rule whose subject the
    attempt lacks (no IP, no device) is absent and cannot fire. ``subjects`` are the keys the attempt
    was counted under (``Subject`` value -> key; emails and phones as keyed digests).
    """

    values: Mapping[str, int] = field(default_factory=dict)
    subjects: Mapping[str, str] = field(default_factory=dict)


def payment_rules(rules: FraudRules) -> tuple[PaymentRule, ...]:
    """The rules judged per payment, in configuration order."""
    return (*rules.velocity, *rules.failures, *rules.spread)


def minor_units(money: Money) -> int:
    """``money`` as an integer count of its currency's minor unit (499.00 INR -> 49900)."""
    return int(money.amount.scaleb(Money.places(money.currency)))


def threshold_of(rule: PaymentRule, currency: str) -> int:
    """The integer a rule's observation must exceed to fire (money in minor units of ``currency``)."""
    limit = Decimal(rule.limit)
    if isinstance(rule, VelocityRule) and rule.measure is Measure.AMOUNT:
        limit = limit.scaleb(Money.places(currency))
    # observed > limit  <=>  observed > floor(limit), for integer observations.
    return int(limit.to_integral_value(rounding=ROUND_FLOOR))


def signal_score(verdict: Verdict, *, observed: int, threshold: int) -> int:
    """The score of a rule that fired (see the module docstring)."""
    low, high = _BANDS[verdict]
    return min(high, low + _SLOPE * (observed - threshold) // max(threshold, 1))


def assess(rules: FraudRules, attempt: PaymentAttempt, observed: Observations) -> Assessment:
    """The verdict on ``attempt``: a signal per fired rule, the strictest verdict, the highest score."""
    signals = [
        signal for rule in payment_rules(rules) if (signal := _judge(rule, attempt, observed)) is not None
    ]
    verdict = max((s.verdict for s in signals), key=lambda v: v.rank, default=Verdict.ALLOW)
    return Assessment(
        verdict=verdict,
        score=max((s.score for s in signals), default=0),
        signals=tuple(signals),
        subjects=dict(observed.subjects),
    )


def _judge(rule: PaymentRule, attempt: PaymentAttempt, observed: Observations) -> FraudSignal | None:
    value = observed.values.get(rule.name)
    subject = observed.subjects.get(rule.subject.value)
    if value is None or subject is None:
        return None
    threshold = threshold_of(rule, attempt.amount.currency)
    if value <= threshold:
        return None
    return FraudSignal(
        rule=rule.name,
        verdict=rule.verdict,
        score=signal_score(rule.verdict, observed=value, threshold=threshold),
        subject_kind=rule.subject.value,
        subject=subject,
        payment_id=attempt.payment_id,
        user_id=attempt.user_id,
        observed=value,
        threshold=threshold,
        window_seconds=rule.window_seconds,
        details=_details(rule, attempt.amount.currency),
        created_at=attempt.at,
    )


def _details(rule: PaymentRule, currency: str) -> dict[str, Any]:
    if isinstance(rule, VelocityRule):
        details: dict[str, Any] = {
            "type": "velocity",
            "measure": rule.measure.value,
            "limit": str(rule.limit),
        }
        if rule.measure is Measure.AMOUNT:
            details["currency"] = currency
        return details
    if isinstance(rule, FailureRule):
        return {"type": "failures", "limit": str(rule.limit)}
    return {"type": "spread", "of": rule.of.value, "limit": str(rule.limit)}


def spike_threshold(rule: SpikeRule, baseline: Sequence[int]) -> int:
    """What the current window must exceed: ``factor`` times the baseline average, and ``min_count``.

    ``baseline`` holds the counts of the windows before the current one; windows it lacks count as
    empty, so a service that has just started compares against the minimum alone.
    """
    trailing = sum(baseline[-rule.baseline_windows :])
    scaled = (rule.factor * trailing / rule.baseline_windows).to_integral_value(rounding=ROUND_FLOOR)
    return max(rule.min_count - 1, int(scaled))


def judge_spike(
    rule: SpikeRule, *, current: int, baseline: Sequence[int], window_start: datetime
) -> FraudSignal | None:
    """The signal of a volume spike in the window starting at ``window_start``, if there is one.

    The signal is dated at the window's start, so the spike of one window is stored once however
    many payments arrive in it. It concerns the traffic, not a payment: its verdict is review.
    """
    threshold = spike_threshold(rule, baseline)
    if current <= threshold:
        return None
    trailing = baseline[-rule.baseline_windows :]
    average = Decimal(sum(trailing)) / rule.baseline_windows
    return FraudSignal(
        rule=rule.name,
        verdict=Verdict.REVIEW,
        score=signal_score(Verdict.REVIEW, observed=current, threshold=threshold),
        subject_kind=OVERALL_KIND,
        subject=OVERALL_SUBJECT,
        payment_id=None,
        user_id=None,
        observed=current,
        threshold=threshold,
        window_seconds=rule.window_seconds,
        details={
            "type": "spike",
            "baselineAverage": str(average.quantize(Decimal("0.01"))),
            "baselineWindows": rule.baseline_windows,
            "factor": str(rule.factor),
            "minCount": rule.min_count,
        },
        created_at=window_start,
    )


def fraud_alert(signal: FraudSignal, *, raised_at: datetime) -> Alert:
    """The admin alert of a fired rule: kind ``fraud_<verdict>``, about ``<subject kind>:<subject>``."""
    window = timedelta(seconds=signal.window_seconds)
    return Alert(
        kind=f"fraud_{signal.verdict.value}",
        subject=f"{signal.subject_kind}:{signal.subject}",
        severity=Severity.CRITICAL if signal.verdict is Verdict.BLOCK else Severity.WARNING,
        title=_title(signal),
        details=_alert_details(signal),
        since=raised_at - window,
        raised_at=raised_at,
        source=SOURCE,
    )


def spike_alert(signal: FraudSignal, *, raised_at: datetime) -> Alert:
    """The admin alert of a volume spike: kind ``payment_spike`` about ``overall:all``."""
    average = signal.details.get("baselineAverage", "0")
    return Alert(
        kind="payment_spike",
        subject=f"{OVERALL_KIND}:{OVERALL_SUBJECT}",
        severity=Severity.WARNING,
        title=(
            f"Payment volume spike: {signal.observed} payments in {signal.window_seconds} s "
            f"(baseline {average} per window, limit {signal.threshold})"
        ),
        details=_alert_details(signal),
        since=signal.created_at,
        raised_at=raised_at,
        source=SOURCE,
    )


def _alert_details(signal: FraudSignal) -> dict[str, Any]:
    return {
        **signal.details,
        "rule": signal.rule,
        "verdict": signal.verdict.value,
        "score": signal.score,
        "observed": signal.observed,
        "limit": signal.threshold,
        "windowSeconds": signal.window_seconds,
        "paymentId": signal.payment_id,
    }


def _title(signal: FraudSignal) -> str:
    kind = signal.subject_kind
    who = signal.subject[:12] if kind in _DIGESTED else signal.subject
    verb = _VERBS[signal.verdict]
    details = signal.details
    observed, limit = str(signal.observed), str(signal.threshold)
    what = "Payments"
    if details.get("measure") == Measure.AMOUNT.value:
        currency = str(details.get("currency"))
        observed, limit = _money(signal.observed, currency), _money(signal.threshold, currency)
    elif details.get("type") == "failures":
        what = "Failed payments"
    elif details.get("type") == "spread":
        observed = f"{observed} distinct {details.get('of')}s"
    return f"{what} from {kind} {who} {verb}: {observed} in {signal.window_seconds} s (limit {limit})"


def _money(minor: int, currency: str) -> str:
    return str(Money(Decimal(minor).scaleb(-Money.places(currency)), currency))

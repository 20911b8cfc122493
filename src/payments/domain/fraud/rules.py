"""The fraud rules, as configuration: each names what it counts, over which window, and its limit.

A rule fires when what it observed *including the payment being screened* is over its ``limit``: a
limit of 5 payments a minute lets five through and stops the sixth. The verdict of a payment is the
strictest verdict among the rules that fired. Operators tune the set with ``FRAUD_RULES`` (JSON in
this shape); ``DEFAULT_RULES`` is what runs without it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from payments.domain.fraud.signals import Verdict

_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
#: One minute to one week.
_Window = Annotated[int, Field(ge=1, le=604_800)]


class Subject(StrEnum):
    """Who or what a payment is counted against."""

    USER = "user"
    IP = "ip"
    DEVICE = "device"  #: the ``X-Device-Fingerprint`` the client sent at create
    EMAIL = "email"  #: a keyed digest of the customer's email, never the email
    PHONE = "phone"  #: a keyed digest of the customer's phone, never the phone


class Measure(StrEnum):
    COUNT = "count"  #: payments
    AMOUNT = "amount"  #: money, in the payment's currency


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: _Name
    window_seconds: _Window
    verdict: Verdict = Verdict.BLOCK


class VelocityRule(_Rule):
    """Payments (or money) per subject over a window: ``limit`` is the most allowed."""

    subject: Subject
    measure: Measure = Measure.COUNT
    limit: Annotated[Decimal, Field(gt=0)]


class FailureRule(_Rule):
    """Failed payments per user or IP over a window."""

    subject: Annotated[Subject, Field(description="user or ip")]
    limit: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _user_or_ip(self) -> FailureRule:
        if self.subject not in {Subject.USER, Subject.IP}:
            raise ValueError("failure rules count per user or per ip")
        return self


class SpreadRule(_Rule):
    """Distinct ``of`` per ``subject`` over a window: one IP for many users, one user from many IPs."""

    subject: Subject
    of: Subject
    limit: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _different(self) -> SpreadRule:
        if self.subject is self.of:
            raise ValueError("a spread rule counts one subject per another")
        return self


class SpikeRule(BaseModel):
    """All payments in the last window against the trailing baseline: a rapid spike of volume.

    Fires when the current window holds at least ``min_count`` payments and more than ``factor``
    times the average of the ``baseline_windows`` windows before it. It concerns the traffic, not one
    payment, so it raises an alert and never blocks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: _Name = "volume_spike"
    window_seconds: _Window = 60
    baseline_windows: Annotated[int, Field(ge=1, le=1440)] = 30
    factor: Annotated[Decimal, Field(gt=1)] = Decimal(5)
    min_count: Annotated[int, Field(ge=1)] = 50


class FraudRules(BaseModel):
    """The whole rule set; names are unique across it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    velocity: tuple[VelocityRule, ...] = ()
    failures: tuple[FailureRule, ...] = ()
    spread: tuple[SpreadRule, ...] = ()
    spike: SpikeRule | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> FraudRules:
        names = [rule.name for rule in (*self.velocity, *self.failures, *self.spread)]
        if self.spike is not None:
            names.append(self.spike.name)
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique: {', '.join(duplicates)}")
        return self


_MINUTE, _TEN_MINUTES, _HOUR, _DAY = 60, 600, 3600, 86_400


def _velocity(name: str, subject: Subject, window: int, limit: int, **extra: object) -> VelocityRule:
    return VelocityRule.model_validate(
        {"name": name, "subject": subject, "window_seconds": window, "limit": limit, **extra}
    )


#: Loose enough for a busy office behind one NAT, tight enough to stop a card-testing burst.
DEFAULT_RULES = FraudRules(
    velocity=(
        _velocity("user_per_minute", Subject.USER, _MINUTE, 5),
        _velocity("user_per_hour", Subject.USER, _HOUR, 30),
        _velocity("user_amount_per_day", Subject.USER, _DAY, 1_000_000, measure=Measure.AMOUNT),
        _velocity("ip_per_minute", Subject.IP, _MINUTE, 10),
        _velocity("ip_per_ten_minutes", Subject.IP, _TEN_MINUTES, 40),
        _velocity("ip_per_day", Subject.IP, _DAY, 500, verdict=Verdict.REVIEW),
        _velocity("device_per_ten_minutes", Subject.DEVICE, _TEN_MINUTES, 10),
        _velocity("email_per_hour", Subject.EMAIL, _HOUR, 20),
        _velocity("phone_per_hour", Subject.PHONE, _HOUR, 20),
    ),
    failures=(
        FailureRule(name="user_failures_per_hour", subject=Subject.USER, window_seconds=_HOUR, limit=10),
        FailureRule(name="ip_failures_per_hour", subject=Subject.IP, window_seconds=_HOUR, limit=20),
    ),
    spread=(
        SpreadRule(
            name="users_per_ip_per_hour",
            subject=Subject.IP,
            of=Subject.USER,
            window_seconds=_HOUR,
            limit=20,
            verdict=Verdict.REVIEW,
        ),
        SpreadRule(
            name="ips_per_user_per_hour",
            subject=Subject.USER,
            of=Subject.IP,
            window_seconds=_HOUR,
            limit=10,
            verdict=Verdict.REVIEW,
        ),
    ),
    spike=SpikeRule(),
)

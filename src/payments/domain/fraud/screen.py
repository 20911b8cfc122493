"""The screen a payment passes at create: the port the payment service calls, and what it answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from payments.domain.errors import Forbidden
from payments.domain.fraud.signals import FraudSignal, Verdict
from payments.domain.money import Money


@dataclass(frozen=True, kw_only=True)
class PaymentAttempt:
    """What the screen knows of a payment being created; ``at`` is its creation time (event time)."""

    payment_id: str
    user_id: str
    amount: Money
    at: datetime
    ip_address: str | None = None
    device_fingerprint: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, kw_only=True)
class Assessment:
    """The screen's answer: the verdict, a 0-100 score, and the signals of the rules that fired.

    ``subjects`` are the keys the attempt was counted under (``Subject`` value -> key; emails and
    phones as keyed digests): the fraud agent replays them from ``payment.created``.
    """

    verdict: Verdict
    score: int
    signals: Sequence[FraudSignal] = ()
    subjects: Mapping[str, str] = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        return [signal.rule for signal in self.signals]


#: What a screen that is switched off (``FRAUD_ENABLED=false``) answers.
ALLOWED = Assessment(verdict=Verdict.ALLOW, score=0)


class FraudScreen(Protocol):
    async def assess(self, attempt: PaymentAttempt) -> Assessment:
        """Count ``attempt`` in the velocity tables (once per payment id) and judge it by the rules."""
        ...


class AllowEverything:
    """A screen that lets every payment through unjudged: for callers that screen nothing."""

    async def assess(self, attempt: PaymentAttempt) -> Assessment:
        return ALLOWED


class Digest(Protocol):
    def __call__(self, value: str, *, kind: str) -> str:
        """A keyed hex digest of an email or phone (``kind`` "email" / "phone"), stable per value.

        What the fraud tables, signals and events hold instead of the value: equal inputs (after
        normalising case and punctuation) give equal digests, and nothing else can be learnt.
        """
        ...


class PaymentBlocked(Forbidden):
    """The payment was refused by fraud screening."""

    code = "payment_blocked"

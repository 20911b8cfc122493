"""A fraud signal: one rule that fired for one payment (or for the traffic as a whole), as stored."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Verdict(StrEnum):
    """What the screen says of a payment; ordered from mildest to strictest."""

    ALLOW = "allow"
    REVIEW = "review"  #: let it through, and tell an admin
    BLOCK = "block"  #: refuse it at create

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}


@dataclass(frozen=True, kw_only=True)
class FraudSignal:
    """``rule`` saw ``observed`` against ``threshold`` for ``subject`` over ``window_seconds``.

    ``subject`` never holds personal data: emails and phones appear as keyed digests.
    """

    rule: str
    verdict: Verdict
    #: 0-100: how strongly this signal speaks against the payment.
    score: int
    #: What was counted: "user", "ip", "device", "email", "phone" or "overall".
    subject_kind: str
    subject: str
    payment_id: str | None
    user_id: str | None
    observed: int
    threshold: int
    window_seconds: int
    details: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime

    @property
    def signal_id(self) -> str:
        """One per rule and payment (or rule, subject and instant without one): stored once."""
        scope = self.payment_id or f"{self.subject_kind}:{self.subject}|{self.created_at.isoformat()}"
        digest = hashlib.sha256(f"{self.rule}|{scope}".encode()).hexdigest()
        return f"fsg_{digest[:24]}"


class FraudSignalRepository(Protocol):
    async def add(self, signal: FraudSignal) -> bool:
        """Store ``signal``; False if a signal with its ``signal_id`` is already stored."""
        ...

    async def for_payment(self, payment_id: str) -> Sequence[FraudSignal]:
        """The signals of one payment, oldest first."""
        ...

    async def recent(self, *, limit: int) -> Sequence[FraudSignal]:
        """The newest signals first."""
        ...

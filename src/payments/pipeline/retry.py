"""The retry policy as data: what to do with a message whose handling failed.

Failure n (1-based) of a message waits in retry tier n (30 s, 2 min, 10 min, 30 min, DESIGN §3);
the failure after the last tier sends it to the dead-letter queue. A ``Reject`` skips the tiers:
retrying cannot fix a bad payload or an illegal transition. Any other exception is treated as
transient, because a bug fixed by a deploy is also fixed for the messages waiting in the tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from payments.domain.errors import Reject, Retry
from payments.pipeline.topology import RETRY_TIERS, RetryTier


class Action(StrEnum):
    RETRY = "retry"  #: wait in a retry tier, then back to the work queue
    DEAD_LETTER = "dead_letter"  #: park in the queue's DLQ for an operator


@dataclass(frozen=True)
class Decision:
    action: Action
    #: How many times handling has now failed, this failure included.
    failures: int
    #: Closed-set reason, safe as a metric label: ``exhausted``, a ``Reject.reason``, or ``retryable``.
    reason: str
    tier: RetryTier | None = None
    #: How long the message waits in its tier (the tier's delay times the configured scale).
    delay_seconds: float = 0.0


def decide(error: BaseException, *, previous_failures: int, delay_scale: float) -> Decision:
    """Decide where a message goes after ``error``, given how often it failed before."""
    failures = previous_failures + 1
    if isinstance(error, Reject):
        return Decision(Action.DEAD_LETTER, failures, error.reason)
    if failures > len(RETRY_TIERS):
        return Decision(Action.DEAD_LETTER, failures, "exhausted")
    tier = _tier_for(failures, error.defer if isinstance(error, Retry) else None)
    return Decision(Action.RETRY, failures, "retryable", tier, tier.delay_seconds * delay_scale)


def _tier_for(failures: int, defer: float | None) -> RetryTier:
    """Tier by failure count, moved later if the error asked to wait longer than that tier."""
    index = failures - 1
    if defer is not None:
        while index < len(RETRY_TIERS) - 1 and RETRY_TIERS[index].delay_seconds < defer:
            index += 1
    return RETRY_TIERS[index]

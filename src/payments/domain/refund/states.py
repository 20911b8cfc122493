"""The refund lifecycle as one transition table (STYLE §5), and how the gateway's statuses map onto it.

    INITIATED ──submit──▶ PROCESSING ──succeed──▶ SUCCESS ──reverse──▶ REVERSED
        │                     │
        └──────fail───────────┴──fail──▶ FAILED

INITIATED: recorded, balance reserved, not yet accepted by the gateway. FAILED and REVERSED release
their amount back to the payment's refundable balance.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from payments.domain.errors import IllegalTransition
from payments.domain.gateway import GatewayRefundStatus


class RefundState(StrEnum):
    INITIATED = "INITIATED"  #: recorded and counted against the balance; not yet with the gateway
    PROCESSING = "PROCESSING"  #: accepted by the gateway; on its way to the customer (or on hold)
    SUCCESS = "SUCCESS"  #: the money reached the customer's account
    FAILED = "FAILED"  #: refused or given up; its amount is refundable again
    REVERSED = "REVERSED"  #: the bank sent a successful refund back; its amount is refundable again


class RefundTrigger(StrEnum):
    SUBMIT = "submit"  #: the gateway accepted the refund
    SUCCEED = "succeed"  #: the gateway reports it done
    FAIL = "fail"  #: refused at once, or cancelled later
    REVERSE = "reverse"  #: the bank returned it


R = RefundState
REFUND_TRANSITIONS: Final[Mapping[tuple[RefundState, RefundTrigger], RefundState]] = {
    (R.INITIATED, RefundTrigger.SUBMIT): R.PROCESSING,
    (R.INITIATED, RefundTrigger.FAIL): R.FAILED,
    (R.PROCESSING, RefundTrigger.SUCCEED): R.SUCCESS,
    (R.PROCESSING, RefundTrigger.FAIL): R.FAILED,
    (R.SUCCESS, RefundTrigger.REVERSE): R.REVERSED,
}

#: States whose amount still counts against the payment's refundable balance.
HOLDS_BALANCE: Final = frozenset({R.INITIATED, R.PROCESSING, R.SUCCESS})

#: What the gateway's refund status means for ours (FACTS §5): ONHOLD is still processing (the reason
#: is kept in the status description); an unknown status changes nothing.
FROM_GATEWAY: Final[Mapping[GatewayRefundStatus, RefundState]] = {
    GatewayRefundStatus.PENDING: R.PROCESSING,
    GatewayRefundStatus.ONHOLD: R.PROCESSING,
    GatewayRefundStatus.SUCCESS: R.SUCCESS,
    GatewayRefundStatus.CANCELLED: R.FAILED,
    GatewayRefundStatus.FAILED: R.FAILED,
}


class DuplicateRefundTransition(IllegalTransition):
    """The refund is already in the state this change would move it to."""

    code = "duplicate_transition"


def transition(state: RefundState, trigger: RefundTrigger) -> RefundState:
    """The state after ``trigger``; raises ``DuplicateRefundTransition`` or ``IllegalTransition``."""
    target = REFUND_TRANSITIONS.get((state, trigger))
    if target is not None:
        return target
    if any(t is trigger and REFUND_TRANSITIONS[(s, t)] is state for s, t in REFUND_TRANSITIONS):
        raise DuplicateRefundTransition(f"refund is already {state.value} ({trigger.value} again)")
    raise IllegalTransition(f"cannot {trigger.value} a refund that is {state.value}")


def sources_of(trigger: RefundTrigger) -> frozenset[RefundState]:
    """The states ``trigger`` may leave from: the SQL guard's ``status = ANY($n)`` list."""
    return frozenset(state for state, t in REFUND_TRANSITIONS if t is trigger)


def path_to(current: RefundState, target: RefundState) -> list[RefundTrigger]:
    """The triggers that take ``current`` to ``target`` (the gateway may report a refund already done:
    INITIATED -> SUCCESS is submit, then succeed); [] when already there or when no path exists."""
    if current is target:
        return []
    for first, via in REFUND_TRANSITIONS.items():
        if first[0] is current and via is target:
            return [first[1]]
    for (start, trigger), middle in REFUND_TRANSITIONS.items():
        if start is current:
            rest = [t for (s, t), end in REFUND_TRANSITIONS.items() if s is middle and end is target]
            if rest:
                return [trigger, rest[0]]
    return []

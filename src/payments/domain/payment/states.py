"""The payment lifecycle as one transition table (STYLE §5); the repository guards it again in SQL.

    CREATED ──open──▶ PENDING ──authorize──▶ AUTHORIZING ──process──▶ PROCESSING
       │                 │  ▲                    │                      │
       │                 │  └──────── fail ──────┴──────────┬───────────┘
       │                 ▼                                  ▼
       │              SUCCESS ◀──────── succeed ──────── FAILED (a later attempt may still succeed)
       │                 │ settle ─▶ SETTLED
       │                 └─ refund ─▶ PARTIALLY_REFUNDED ─▶ REFUNDED
       └─ cancel / expire ─▶ CANCELLED / EXPIRED (a success the gateway confirms afterwards still wins)

A success is recorded only when the gateway itself confirms it (DESIGN §6), and a confirmed success
must never be lost: it is accepted from every unpaid state, EXPIRED and CANCELLED included, because
an attempt started before expiry or cancellation can still capture money.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from payments.domain.errors import IllegalTransition


class PaymentState(StrEnum):
    CREATED = "CREATED"  #: recorded; no gateway order yet
    PENDING = "PENDING"  #: gateway order open; waiting for the customer to pay
    AUTHORIZING = "AUTHORIZING"  #: the customer started an attempt; waiting for authorisation
    PROCESSING = "PROCESSING"  #: an attempt is pending at the bank or gateway
    SUCCESS = "SUCCESS"  #: captured, confirmed by the gateway
    FAILED = "FAILED"  #: the latest attempt failed; the order may still be paid by another attempt
    EXPIRED = "EXPIRED"  #: the order expired unpaid
    CANCELLED = "CANCELLED"  #: we closed the order unpaid
    REFUNDED = "REFUNDED"  #: refunds reached the captured amount
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"  #: some of the captured amount was refunded
    SETTLED = "SETTLED"  #: the gateway paid the money out to us


class PaymentTrigger(StrEnum):
    OPEN = "open"  #: the gateway order was created
    AUTHORIZE = "authorize"  #: an attempt started
    PROCESS = "process"  #: an attempt is pending
    SUCCEED = "succeed"  #: the gateway confirmed a successful attempt
    FAIL = "fail"  #: the latest attempt failed
    EXPIRE = "expire"  #: the order expired unpaid
    CANCEL = "cancel"  #: we closed the order unpaid
    REFUND_PART = "refund_part"  #: a refund left part of the captured amount
    REFUND_ALL = "refund_all"  #: refunds now equal the captured amount
    SETTLE = "settle"  #: the gateway settled the captured amount to us


S = PaymentState
_UNPAID: Final = (S.CREATED, S.PENDING, S.AUTHORIZING, S.PROCESSING, S.FAILED)
_CAPTURED: Final = (S.SUCCESS, S.SETTLED, S.PARTIALLY_REFUNDED)


def _edges(
    trigger: PaymentTrigger, sources: Iterable[PaymentState], target: PaymentState
) -> dict[tuple[PaymentState, PaymentTrigger], PaymentState]:
    return {(source, trigger): target for source in sources}


#: (state, trigger) -> next state. Anything absent is illegal.
PAYMENT_TRANSITIONS: Final[Mapping[tuple[PaymentState, PaymentTrigger], PaymentState]] = {
    **_edges(PaymentTrigger.OPEN, [S.CREATED], S.PENDING),
    **_edges(PaymentTrigger.AUTHORIZE, [S.PENDING, S.FAILED], S.AUTHORIZING),
    **_edges(PaymentTrigger.PROCESS, [S.PENDING, S.AUTHORIZING, S.FAILED], S.PROCESSING),
    **_edges(PaymentTrigger.SUCCEED, [*_UNPAID, S.EXPIRED, S.CANCELLED], S.SUCCESS),
    **_edges(PaymentTrigger.FAIL, [S.PENDING, S.AUTHORIZING, S.PROCESSING], S.FAILED),
    **_edges(PaymentTrigger.EXPIRE, [S.CREATED, S.PENDING, S.FAILED], S.EXPIRED),
    **_edges(PaymentTrigger.CANCEL, [S.CREATED, S.PENDING, S.FAILED], S.CANCELLED),
    **_edges(PaymentTrigger.REFUND_PART, _CAPTURED, S.PARTIALLY_REFUNDED),
    **_edges(PaymentTrigger.REFUND_ALL, _CAPTURED, S.REFUNDED),
    **_edges(PaymentTrigger.SETTLE, [S.SUCCESS], S.SETTLED),
}


class DuplicateTransition(IllegalTransition):
    """The payment is already in the state this change would move it to."""

    code = "duplicate_transition"


def transition(state: PaymentState, trigger: PaymentTrigger) -> PaymentState:
    """The state after ``trigger``; raises ``DuplicateTransition`` or ``IllegalTransition``."""
    target = PAYMENT_TRANSITIONS.get((state, trigger))
    if target is not None:
        return target
    if any(t is trigger and PAYMENT_TRANSITIONS[(s, t)] is state for s, t in PAYMENT_TRANSITIONS):
        raise DuplicateTransition(f"payment is already {state.value} ({trigger.value} again)")
    raise IllegalTransition(f"cannot {trigger.value} a payment that is {state.value}")


def sources_of(trigger: PaymentTrigger) -> frozenset[PaymentState]:
    """The states ``trigger`` may leave from: the SQL guard's ``status = ANY($n)`` list."""
    return frozenset(state for state, t in PAYMENT_TRANSITIONS if t is trigger)

"""The payment transition table: every legal transition, and every other pair refused."""

from __future__ import annotations

import itertools

import pytest

from payments.domain.errors import IllegalTransition
from payments.domain.payment.states import (
    PAYMENT_TRANSITIONS,
    DuplicateTransition,
    PaymentState,
    PaymentTrigger,
    sources_of,
    transition,
)

S, T = PaymentState, PaymentTrigger

#: The lifecycle written out by hand, so a change to the table must be made twice, on purpose.
EXPECTED = {
    (S.CREATED, T.OPEN): S.PENDING,
    (S.PENDING, T.AUTHORIZE): S.AUTHORIZING,
    (S.FAILED, T.AUTHORIZE): S.AUTHORIZING,
    (S.PENDING, T.PROCESS): S.PROCESSING,
    (S.AUTHORIZING, T.PROCESS): S.PROCESSING,
    (S.FAILED, T.PROCESS): S.PROCESSING,
    **{(s, T.SUCCEED): S.SUCCESS for s in (S.CREATED, S.PENDING, S.AUTHORIZING, S.PROCESSING, S.FAILED)},
    (S.EXPIRED, T.SUCCEED): S.SUCCESS,
    (S.CANCELLED, T.SUCCEED): S.SUCCESS,
    (S.PENDING, T.FAIL): S.FAILED,
    (S.AUTHORIZING, T.FAIL): S.FAILED,
    (S.PROCESSING, T.FAIL): S.FAILED,
    **{(s, T.EXPIRE): S.EXPIRED for s in (S.CREATED, S.PENDING, S.FAILED)},
    **{(s, T.CANCEL): S.CANCELLED for s in (S.CREATED, S.PENDING, S.FAILED)},
    **{(s, T.REFUND_PART): S.PARTIALLY_REFUNDED for s in (S.SUCCESS, S.SETTLED, S.PARTIALLY_REFUNDED)},
    **{(s, T.REFUND_ALL): S.REFUNDED for s in (S.SUCCESS, S.SETTLED, S.PARTIALLY_REFUNDED)},
    (S.SUCCESS, T.SETTLE): S.SETTLED,
}


def test_the_table_is_exactly_the_documented_lifecycle():
    assert dict(PAYMENT_TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "trigger"), sorted(EXPECTED))
def test_every_legal_transition_is_allowed(state, trigger):
    assert transition(state, trigger) is EXPECTED[(state, trigger)]


ILLEGAL = sorted(set(itertools.product(PaymentState, PaymentTrigger)) - set(EXPECTED))


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL)
def test_every_other_transition_is_refused(state, trigger):
    with pytest.raises(IllegalTransition):
        transition(state, trigger)


def test_a_failed_attempt_does_not_end_a_payment_a_later_attempt_can_still_pay():
    state = transition(transition(S.PENDING, T.FAIL), T.SUCCEED)

    assert state is S.SUCCESS


def test_repeating_a_transition_is_refused_as_a_duplicate():
    with pytest.raises(DuplicateTransition, match="already SUCCESS"):
        transition(S.SUCCESS, T.SUCCEED)
    with pytest.raises(DuplicateTransition):
        transition(S.FAILED, T.FAIL)


def test_a_success_can_never_be_failed_afterwards():
    with pytest.raises(IllegalTransition) as refused:
        transition(S.SUCCESS, T.FAIL)

    assert not isinstance(refused.value, DuplicateTransition)


def test_the_sql_guard_lists_exactly_the_sources_of_a_trigger():
    assert sources_of(T.SETTLE) == {S.SUCCESS}
    assert sources_of(T.FAIL) == {S.PENDING, S.AUTHORIZING, S.PROCESSING}

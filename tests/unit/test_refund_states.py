"""The refund transition table and the gateway status mapping."""

from __future__ import annotations

import itertools

import pytest

from payments.domain.errors import IllegalTransition
from payments.domain.gateway import GatewayRefundStatus
from payments.domain.refund.states import (
    FROM_GATEWAY,
    REFUND_TRANSITIONS,
    DuplicateRefundTransition,
    RefundState,
    RefundTrigger,
    path_to,
    transition,
)

R, T = RefundState, RefundTrigger
EXPECTED = {
    (R.INITIATED, T.SUBMIT): R.PROCESSING,
    (R.INITIATED, T.FAIL): R.FAILED,
    (R.PROCESSING, T.SUCCEED): R.SUCCESS,
    (R.PROCESSING, T.FAIL): R.FAILED,
    (R.SUCCESS, T.REVERSE): R.REVERSED,
}


def test_the_table_is_exactly_the_documented_lifecycle():
    assert dict(REFUND_TRANSITIONS) == EXPECTED


@pytest.mark.parametrize(("state", "trigger"), sorted(set(itertools.product(R, T)) - set(EXPECTED)))
def test_every_other_transition_is_refused(state, trigger):
    with pytest.raises(IllegalTransition):
        transition(state, trigger)


def test_a_repeated_transition_is_a_duplicate():
    with pytest.raises(DuplicateRefundTransition):
        transition(R.SUCCESS, T.SUCCEED)


@pytest.mark.parametrize(
    ("gateway", "ours"),
    [
        (GatewayRefundStatus.PENDING, R.PROCESSING),
        (GatewayRefundStatus.ONHOLD, R.PROCESSING),
        (GatewayRefundStatus.SUCCESS, R.SUCCESS),
        (GatewayRefundStatus.CANCELLED, R.FAILED),
        (GatewayRefundStatus.FAILED, R.FAILED),
    ],
)
def test_the_gateways_refund_statuses_map_onto_ours(gateway, ours):
    assert FROM_GATEWAY[gateway] is ours


def test_an_unknown_gateway_status_maps_to_nothing():
    assert GatewayRefundStatus.UNKNOWN not in FROM_GATEWAY


@pytest.mark.parametrize(
    ("current", "target", "path"),
    [
        (R.INITIATED, R.SUCCESS, [T.SUBMIT, T.SUCCEED]),
        (R.INITIATED, R.PROCESSING, [T.SUBMIT]),
        (R.PROCESSING, R.FAILED, [T.FAIL]),
        (R.SUCCESS, R.SUCCESS, []),
        (R.SUCCESS, R.PROCESSING, []),
        (R.FAILED, R.SUCCESS, []),
    ],
)
def test_the_path_from_one_state_to_another(current, target, path):
    assert path_to(current, target) == path

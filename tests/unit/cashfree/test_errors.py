"""Cashfree's error answers become the domain's errors, each carrying the decision it implies."""

from __future__ import annotations

import pytest

from payments.bridges.cashfree.errors import IdempotencyKeyReused, OrderAlreadyExists, error_for_status
from payments.bridges.cashfree.models import ErrorBody
from payments.domain.errors import (
    DependencyUnavailable,
    GatewayAuthenticationFailed,
    GatewayConflict,
    GatewayRateLimited,
    GatewayRejected,
    NotFound,
    Reject,
    Retry,
)


def body(code: str | None = None, kind: str | None = None, message: str | None = None) -> ErrorBody:
    return ErrorBody(code=code, type=kind, message=message)


@pytest.mark.parametrize(
    ("status", "error_body", "expected"),
    [
        (401, body("request_failed", "authentication_error"), GatewayAuthenticationFailed),
        (403, body("request_failed", "authentication_error"), GatewayAuthenticationFailed),
        (400, body("order_amount_invalid", "invalid_request_error"), GatewayRejected),
        (422, body("request_invalid", "invalid_request_error"), GatewayRejected),
        (404, body("order_not_found", "invalid_request_error"), NotFound),
        (409, body("resource_already_present", "invalid_request_error"), GatewayConflict),
        (429, body("request_failed", "rate_limit_error"), GatewayRateLimited),
        (500, body("internal_error", "api_error"), DependencyUnavailable),
        (502, body("bank_processing_failure", "api_error"), DependencyUnavailable),
        (302, body(), DependencyUnavailable),
    ],
)
def test_each_status_maps_to_its_domain_error(status, error_body, expected):
    assert type(error_for_status(status, error_body)) is expected


def test_a_rejection_keeps_cashfree_code_and_is_not_retried():
    error = error_for_status(400, body("customer_details.customer_phone_missing", "invalid_request_error"))

    assert isinstance(error, GatewayRejected)
    assert isinstance(error, Reject)
    assert error.gateway_code == "customer_details.customer_phone_missing"


@pytest.mark.parametrize(
    ("status", "error_body"),
    [
        (422, body("request_invalid", "idempotency_error")),
        (400, body("idempotency_key_mismatch", "invalid_request_error")),
    ],
    ids=["spec-422", "skills-400"],
)
def test_both_readings_of_a_reused_idempotency_key_give_one_error(status, error_body):
    error = error_for_status(status, error_body)

    assert isinstance(error, IdempotencyKeyReused)
    assert isinstance(error, Reject)
    assert not isinstance(error, Retry)
    assert error.gateway_code == error_body.code


def test_an_existing_order_is_told_apart_from_other_conflicts():
    existing = error_for_status(409, body("order_already_exists", "invalid_request_error"))
    other = error_for_status(409, body("refund_already_exists", "invalid_request_error"))

    assert isinstance(existing, OrderAlreadyExists)
    assert isinstance(existing, GatewayConflict)
    assert not isinstance(other, OrderAlreadyExists)


def test_a_rate_limit_carries_the_wait_cashfree_asked_for():
    error = error_for_status(429, body("request_failed", "rate_limit_error"), retry_after=7.0)

    assert isinstance(error, GatewayRateLimited)
    assert error.defer == 7.0


def test_the_message_names_the_status_code_message_and_cashfree_request_id():
    error = error_for_status(
        400, body("order_amount_invalid", message="order_amount : Invalid amount"), request_id="req-9"
    )

    assert (
        str(error)
        == "Cashfree answered 400 order_amount_invalid: order_amount : Invalid amount (x-request-id req-9)"
    )


def test_a_very_long_message_is_cut_short():
    error = error_for_status(400, body("x_invalid", message="a" * 5000))

    assert len(str(error)) < 400


def test_an_empty_error_body_still_gives_a_readable_message():
    assert str(error_for_status(500, ErrorBody())) == "Cashfree answered 500 no code"

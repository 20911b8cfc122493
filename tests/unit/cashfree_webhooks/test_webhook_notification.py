"""Parsed Cashfree webhooks mapped onto the domain's ``GatewayNotification``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from payments.bridges.cashfree.webhooks import parse_webhook
from payments.domain.gateway import AttemptStatus, GatewayRefundStatus
from payments.domain.money import Money
from payments.domain.webhook.notification import GatewayNotification, NotificationKind

from . import _samples
from ._shared import read_body, variant

PAYMENT_SUCCESS = read_body("payment_success.body")
REFUND_SUCCESS = read_body("refund_success.body")
LAGO_LINK_EVENT = read_body("lago_payment_link_event.body")


def notification_of(body: bytes, headers: dict[str, str] | None = None) -> GatewayNotification:
    return parse_webhook(body, headers or {}).to_notification()


def test_a_payment_success_becomes_a_successful_attempt_notification():
    parsed = parse_webhook(PAYMENT_SUCCESS, {})

    notification = parsed.to_notification()

    assert notification.kind is NotificationKind.PAYMENT
    assert notification.event_type == "PAYMENT_SUCCESS_WEBHOOK"
    assert notification.dedup_key == parsed.dedup_key
    assert notification.order_id == "order_OFR_2"
    assert notification.attempt_id == "1453002795"
    assert notification.attempt_status is AttemptStatus.SUCCESS
    assert notification.amount == Money.of("1.00", "INR")
    assert notification.payment_method == "upi"
    assert notification.occurred_at == datetime(2022, 12, 15, 6, 50, 30, tzinfo=UTC)
    assert notification.error_code is None
    assert notification.raw == parsed.raw


def test_a_failed_payment_carries_its_error_code_and_reason():
    notification = notification_of(_samples.PAYMENT_FAILED_2023)

    assert notification.attempt_status is AttemptStatus.FAILED
    assert notification.error_code == "TRANSACTION_DECLINED"
    assert notification.error_reason == "auth_declined"
    assert notification.payment_method == "card"
    assert notification.amount == Money.of("170.00", "INR")


def test_a_dropped_payment_becomes_a_user_dropped_attempt():
    notification = notification_of(_samples.PAYMENT_USER_DROPPED_2023)

    assert notification.attempt_status is AttemptStatus.USER_DROPPED
    assert notification.attempt_id == "885000003"
    assert notification.error_code is None


def test_an_unknown_payment_status_maps_to_unknown_never_a_guess():
    body = variant(PAYMENT_SUCCESS, b'"payment_status":"SUCCESS"', b'"payment_status":"AUTHORIZED"')

    assert notification_of(body).attempt_status is AttemptStatus.UNKNOWN


def test_a_payment_without_a_method_object_falls_back_to_its_group():
    body = variant(
        PAYMENT_SUCCESS,
        b'"payment_method":{"upi":{"channel":"collect","upi_id":"suhasg6@ybl"}}',
        b'"payment_method":null',
    )

    assert notification_of(body).payment_method == "upi"


def test_a_refund_webhook_becomes_a_refund_notification():
    notification = notification_of(REFUND_SUCCESS)

    assert notification.kind is NotificationKind.REFUND
    assert notification.refund_id == "refund_sampleorder0413"
    assert notification.gateway_refund_id == "11325632"
    assert notification.attempt_id == "789727431"
    assert notification.order_id == "sampleorder0413"
    assert notification.refund_status is GatewayRefundStatus.SUCCESS
    assert notification.amount == Money.of("2.00", "INR")
    assert notification.attempt_status is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (b"FAILED", GatewayRefundStatus.FAILED),
        (b"ONHOLD", GatewayRefundStatus.ONHOLD),
        (b"REVERSED_BY_BANK", GatewayRefundStatus.UNKNOWN),
    ],
)
def test_refund_statuses_map_onto_the_domain_enum(status: bytes, expected: GatewayRefundStatus):
    body = variant(_samples.REFUND_2023, b'"refund_status": "FAILED"', b'"refund_status": "' + status + b'"')

    assert notification_of(body).refund_status is expected


def test_a_settlement_webhook_becomes_a_settlement_notification_in_rupees():
    notification = notification_of(_samples.SETTLEMENT_2023)

    assert notification.kind is NotificationKind.SETTLEMENT
    assert notification.settlement_id == "79524"
    assert notification.utr == "2341234"
    assert notification.amount == Money.of("9.67", "INR")
    assert notification.order_id is None


def test_a_settlement_not_yet_settled_reports_its_settlement_amount():
    notification = notification_of(_samples.SETTLEMENT_2025)

    assert notification.amount == Money.of("488.79", "INR")
    assert notification.utr is None


def test_a_dispute_webhook_becomes_a_dispute_notification():
    notification = notification_of(_samples.DISPUTE_2025)

    assert notification.kind is NotificationKind.DISPUTE
    assert notification.dispute_id == "433475257"
    assert notification.order_id == "order_1001"
    assert notification.attempt_id == "885000002"
    assert notification.amount == Money.of("170.00", "INR")


def test_a_dispute_without_its_own_currency_takes_the_payments():
    assert notification_of(_samples.DISPUTE_2023).amount == Money.of("170.00", "INR")


def test_an_unknown_event_is_kept_as_an_unknown_notification_with_its_payload():
    notification = notification_of(LAGO_LINK_EVENT)

    assert notification.kind is NotificationKind.UNKNOWN
    assert notification.event_type == "PAYMENT_LINK_EVENT"
    assert notification.raw["data"]["link_id"] == "payment_ps11"
    assert notification.order_id is None
    assert notification.amount is None


def test_an_amount_in_an_unsupported_currency_is_left_out():
    body = variant(PAYMENT_SUCCESS, b'"payment_currency":"INR"', b'"payment_currency":"XTS"')

    notification = notification_of(body)

    assert notification.amount is None
    assert notification.raw["data"]["payment"]["payment_currency"] == "XTS"


def test_a_2025_notification_uses_the_idempotency_header_as_its_key():
    notification = notification_of(_samples.PAYMENT_SUCCESS_2025, _samples.HEADERS_2025)

    assert notification.dedup_key == "cashfree:idem:bWpZQ2xQb3JzZ2VOc2pDZ1hWY2hrQT09"
    assert notification.attempt_id == "5114910245771"


def test_a_notification_is_immutable():
    notification = notification_of(PAYMENT_SUCCESS)

    with pytest.raises(dataclasses.FrozenInstanceError):
        notification.order_id = "someone_else"  # type: ignore[misc]

"""Lenient parsing of Cashfree webhook bodies: documented samples, versions 2023-08-01 and 2025-01-01."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.bridges.cashfree.webhooks import (
    CUSTOMER_IDENTITY,
    DisputeWebhook,
    MalformedWebhook,
    PaymentWebhook,
    RefundWebhook,
    SettlementWebhook,
    UnknownWebhook,
    parse_webhook,
)
from payments.domain.errors import InvalidPayload, Reject

from . import _samples
from ._shared import read_body, variant

PAYMENT_SUCCESS = read_body("payment_success.body")
REFUND_SUCCESS = read_body("refund_success.body")
LAGO_LINK_EVENT = read_body("lago_payment_link_event.body")


def exact(amount: Decimal | None) -> str:
    """Decimal("2.0") == Decimal("2.00"), so amounts are compared as written."""
    return str(amount)


def test_the_documented_payment_success_sample_parses_into_a_payment_webhook():
    event = parse_webhook(PAYMENT_SUCCESS, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.type == "PAYMENT_SUCCESS_WEBHOOK"
    assert event.data.payment is not None
    assert event.data.payment.cf_payment_id == "1453002795"
    assert event.data.payment.payment_status == "SUCCESS"
    assert event.data.payment.payment_method == {"upi": {"channel": "collect", "upi_id": "suhasg6@ybl"}}
    assert event.event_time == datetime(2022, 12, 15, 6, 50, 30, tzinfo=UTC)


def test_amounts_keep_their_exact_decimal_digits():
    event = parse_webhook(PAYMENT_SUCCESS, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.order is not None
    assert event.data.payment is not None
    assert exact(event.data.order.order_amount) == "2.00"
    assert exact(event.data.payment.payment_amount) == "1.00"


def test_the_documented_refund_sample_parses_with_numeric_ids_as_strings():
    event = parse_webhook(REFUND_SUCCESS, {}).event

    assert isinstance(event, RefundWebhook)
    refund = event.data.refund
    assert refund is not None
    assert refund.cf_refund_id == "11325632"
    assert refund.cf_payment_id == "789727431"
    assert refund.entity == "Refund"
    assert exact(refund.refund_amount) == "2.00"
    assert refund.refund_charge == Decimal(0)
    assert refund.metadata is None


def test_nulls_in_order_tags_customer_fields_and_auth_id_are_accepted():
    event = parse_webhook(PAYMENT_SUCCESS, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.order is not None
    assert event.data.order.order_tags is None
    assert event.data.customer_details is not None
    assert event.data.customer_details.customer_name is None
    assert event.data.payment is not None
    assert event.data.payment.auth_id is None


def test_null_objects_and_null_values_inside_tags_are_accepted():
    event = parse_webhook(_samples.PAYMENT_USER_DROPPED_2023, {}).event
    success = parse_webhook(_samples.PAYMENT_SUCCESS_2025, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.customer_details is None
    assert event.data.payment_gateway_details is None
    assert isinstance(success, PaymentWebhook)
    assert success.data.order is not None
    assert success.data.order.order_tags == {"plan": "team", "seats": None}


def test_a_2023_failed_payment_keeps_its_error_details():
    event = parse_webhook(_samples.PAYMENT_FAILED_2023, _samples.HEADERS_2023).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.error_details is not None
    assert event.data.error_details.error_code == "TRANSACTION_DECLINED"
    assert event.data.error_details.error_reason == "auth_declined"
    assert exact(event.data.payment.payment_amount if event.data.payment else None) == "170.00"


def test_a_2025_payment_reads_its_new_fields_and_numeric_ids_as_strings():
    parsed = parse_webhook(_samples.PAYMENT_SUCCESS_2025, _samples.HEADERS_2025)

    assert parsed.version == "2025-01-01"
    assert isinstance(parsed.event, PaymentWebhook)
    payment = parsed.event.data.payment
    assert payment is not None
    assert payment.cf_payment_id == "5114910245771"
    assert payment.bank_reference == "234928698581"
    assert payment.international_payment == {"international": False}
    assert payment.payment_method is not None
    assert payment.payment_method["upi"]["upi_instrument"] == "UPI"


def test_a_2023_refund_with_a_failed_status_and_extra_speed_fields_parses():
    event = parse_webhook(_samples.REFUND_2023, _samples.HEADERS_2023).event

    assert isinstance(event, RefundWebhook)
    assert event.data.refund is not None
    assert event.data.refund.refund_status == "FAILED"
    assert event.data.refund.model_extra == {
        "requested_speed": "STANDARD",
        "processed_speed": None,
        "service_charge": None,
        "service_tax": None,
    }


@pytest.mark.parametrize("body", [_samples.SETTLEMENT_2023, _samples.SETTLEMENT_2025])
def test_settlement_webhooks_of_both_versions_parse(body: bytes):
    event = parse_webhook(body, {}).event

    assert isinstance(event, SettlementWebhook)
    assert event.data.settlement is not None
    assert event.data.settlement.settlement_id in {"79524", "81234"}


def test_a_settlement_sent_with_numeric_id_and_utr_keeps_them_as_strings():
    event = parse_webhook(_samples.SETTLEMENT_2023, {}).event

    assert isinstance(event, SettlementWebhook)
    settlement = event.data.settlement
    assert settlement is not None
    assert settlement.settlement_id == "79524"
    assert settlement.utr == "2341234"
    assert exact(settlement.amount_settled) == "9.67"
    assert exact(settlement.settlement_charge) == "0.00"


@pytest.mark.parametrize("body", [_samples.DISPUTE_2023, _samples.DISPUTE_2025])
def test_dispute_webhooks_of_both_versions_parse(body: bytes):
    event = parse_webhook(body, {}).event

    assert isinstance(event, DisputeWebhook)
    assert event.data.dispute is not None
    assert event.data.dispute.dispute_id == "433475257"
    assert event.data.order_details is not None
    assert event.data.order_details.cf_payment_id == "885000002"


def test_unknown_fields_are_kept_at_every_level():
    body = variant(PAYMENT_SUCCESS, b'"payment_group":"upi"', b'"payment_group":"upi","brand_new":{"x":1}')
    body = variant(body, b'"type":"PAYMENT_SUCCESS_WEBHOOK"', b'"type":"PAYMENT_SUCCESS_WEBHOOK","v":3')

    event = parse_webhook(body, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.payment is not None
    assert event.data.payment.model_extra == {"brand_new": {"x": 1}}
    assert event.model_extra == {"v": 3}


def test_an_unknown_type_becomes_an_unknown_webhook_keeping_its_data():
    event = parse_webhook(LAGO_LINK_EVENT, {}).event

    assert isinstance(event, UnknownWebhook)
    assert event.type == "PAYMENT_LINK_EVENT"
    assert event.data["cf_link_id"] == 1576977
    assert event.data["order"]["order_amount"] == "22.00"
    assert event.model_extra == {"version": 1}


def test_an_unknown_status_value_is_accepted():
    body = variant(PAYMENT_SUCCESS, b'"payment_status":"SUCCESS"', b'"payment_status":"PARTIALLY_CAPTURED"')

    event = parse_webhook(body, {}).event

    assert isinstance(event, PaymentWebhook)
    assert event.data.payment is not None
    assert event.data.payment.payment_status == "PARTIALLY_CAPTURED"


def test_a_time_without_offset_is_read_in_india_time():
    body = variant(
        PAYMENT_SUCCESS, b'"event_time":"2022-12-15T12:20:30+05:30"', b'"event_time":"2022-12-15T12:20:30"'
    )

    event = parse_webhook(body, {}).event

    assert event.event_time is not None
    assert event.event_time.utcoffset() == timedelta(hours=5, minutes=30)
    assert event.event_time == datetime(2022, 12, 15, 6, 50, 30, tzinfo=UTC)


def test_an_unreadable_time_is_left_empty_and_kept_in_the_raw_payload():
    body = variant(PAYMENT_SUCCESS, b'"event_time":"2022-12-15T12:20:30+05:30"', b'"event_time":"yesterday"')

    parsed = parse_webhook(body, {})

    assert parsed.event.event_time is None
    assert parsed.raw["event_time"] == "yesterday"


MALFORMED = {
    "not JSON": b"type=PAYMENT_SUCCESS_WEBHOOK",
    "empty": b"",
    "JSON array": b'[{"type": "PAYMENT_SUCCESS_WEBHOOK", "data": {}}]',
    "JSON string": b'"PAYMENT_SUCCESS_WEBHOOK"',
    "missing type": b'{"data": {}, "event_time": "2022-12-15T12:20:30+05:30"}',
    "numeric type": b'{"type": 7, "data": {}}',
    "empty type": b'{"type": "", "data": {}}',
    "missing data": b'{"type": "PAYMENT_SUCCESS_WEBHOOK"}',
    "array data": b'{"type": "PAYMENT_SUCCESS_WEBHOOK", "data": []}',
    "NaN amount": b'{"type": "PAYMENT_SUCCESS_WEBHOOK", "data": {"payment": {"payment_amount": NaN}}}',
    "invalid UTF-8": b'{"type": "PAYMENT_SUCCESS_WEBHOOK", "data": {"x": "\xff"}}',
    "deep nesting": b'{"type": "X", "data": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_body_that_is_not_a_webhook_envelope_is_malformed(body: bytes):
    with pytest.raises(MalformedWebhook) as caught:
        parse_webhook(body, {})

    assert isinstance(caught.value, InvalidPayload)
    assert isinstance(caught.value, Reject)
    assert caught.value.reason == "malformed_webhook"


def test_a_known_type_with_a_wrongly_shaped_payload_is_malformed_without_echoing_it():
    body = variant(
        PAYMENT_SUCCESS, b'"customer_email":"test@example.com"', b'"customer_email":["test@example.com"]'
    )

    with pytest.raises(MalformedWebhook, match=r"data\.customer_details\.customer_email") as caught:
        parse_webhook(body, {})

    assert "test@example.com" not in str(caught.value)


def test_the_raw_payload_is_the_whole_body_with_exact_amounts():
    parsed = parse_webhook(PAYMENT_SUCCESS, {})

    assert parsed.raw["type"] == "PAYMENT_SUCCESS_WEBHOOK"
    assert exact(parsed.raw["data"]["order"]["order_amount"]) == "2.00"


def test_the_raw_payload_keeps_the_customer_id_but_not_who_the_customer_is():
    assert b"customer_email" in PAYMENT_SUCCESS  # Cashfree's own sample names the customer

    customer = parse_webhook(PAYMENT_SUCCESS, {}).raw["data"]["customer_details"]

    assert not CUSTOMER_IDENTITY & set(customer)
    assert "customer_id" in customer

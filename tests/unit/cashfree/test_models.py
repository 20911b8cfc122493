"""Cashfree's wire models: lenient about what comes in, exact about what goes out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from payments.bridges.cashfree import wire
from payments.bridges.cashfree.models import (
    CreateOrderRequest,
    CreateRefundRequest,
    CustomerDetails,
    FetchReconRequest,
    FetchSettlementsRequest,
    OrderEntity,
    OrderMeta,
    OrderPayRequest,
    Pagination,
    PaymentEntity,
    ReconFilters,
    RefundEntity,
    SettlementEntity,
    SettlementFilters,
    SettlementReconPage,
    Upi,
    UpiPaymentMethod,
)


def order_request(amount: str = "100.5", **changes: object) -> CreateOrderRequest:
    fields: dict[str, object] = {
        "order_id": "order_42",
        "order_amount": Decimal(amount),
        "order_currency": "INR",
        "customer_details": CustomerDetails(customer_id="cust_7", customer_phone="9999999999"),
    }
    return CreateOrderRequest(**(fields | changes))


# -- inbound ------------------------------------------------------------------------------------------


def test_ids_sent_as_json_numbers_are_kept_as_their_digits():
    document = wire.loads(b'{"cf_payment_id": 5114917039291, "order_id": "o1", "bank_reference": 1234}')

    payment = PaymentEntity.model_validate(document)

    assert payment.cf_payment_id == "5114917039291"
    assert payment.bank_reference == "1234"


def test_settlement_and_transfer_ids_arrive_as_integers_and_are_kept_as_text():
    settlement = SettlementEntity.model_validate({"settlement_id": 91, "transfer_id": 12345678901234567890})

    assert settlement.settlement_id == "91"
    assert settlement.transfer_id == "12345678901234567890"


def test_null_is_accepted_in_any_field_even_where_the_spec_forbids_it():
    document = {name: None for name in OrderEntity.model_fields}

    order = OrderEntity.model_validate(document)

    assert order.order_tags is None
    assert order.customer_details is None


def test_unknown_fields_are_kept_rather_than_rejected():
    refund = RefundEntity.model_validate(
        {"refund_id": "r1", "refund_splits": [], "brand_new_field": {"a": 1}}
    )

    assert refund.model_extra == {"brand_new_field": {"a": 1}}
    assert refund.model_dump()["brand_new_field"] == {"a": 1}


def test_unknown_status_values_survive_as_text():
    order = OrderEntity.model_validate({"order_status": "PARTIALLY_PAID"})
    refund = RefundEntity.model_validate({"refund_status": "FAILED", "entity": "Refund"})

    assert order.order_status == "PARTIALLY_PAID"
    assert refund.refund_status == "FAILED"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'{"order_amount": 2.00}', "2.00"),
        (b'{"order_amount": "2.00"}', "2.00"),
        (b'{"order_amount": 100}', "100"),
        (b'{"order_amount": 1234567.89}', "1234567.89"),
        (b'{"order_amount": 0.30000000000000004}', "0.30000000000000004"),
    ],
)
def test_amounts_are_read_exactly_from_numbers_and_strings(text, expected):
    order = OrderEntity.model_validate(wire.loads(text))

    assert order.order_amount == Decimal(expected)
    assert str(order.order_amount) == expected


def test_a_refund_speed_may_be_an_object_or_a_plain_string():
    as_object = RefundEntity.model_validate(
        {"refund_speed": {"requested": "INSTANT", "processed": "STANDARD"}}
    )
    as_text = RefundEntity.model_validate({"refund_speed": "STANDARD"})

    assert not isinstance(as_object.refund_speed, str)
    assert as_object.refund_speed is not None
    assert as_object.refund_speed.processed == "STANDARD"
    assert as_text.refund_speed == "STANDARD"


def test_settlement_report_rows_are_read_grouped_by_subject():
    page = SettlementReconPage.model_validate(
        wire.loads(
            b'{"cursor": null, "limit": 10, "data": [{"event_details": {"event_id": 77,'
            b' "event_amount": 99.90, "event_type": "PAYMENT"},'
            b' "settlement_details": {"utr": 4455, "cf_settlement_id": null}}]}'
        )
    )

    assert page.data is not None
    row = page.data[0]
    assert row.event_details is not None
    assert row.event_details.event_id == "77"
    assert row.event_details.event_amount == Decimal("99.90")
    assert row.settlement_details is not None
    assert row.settlement_details.utr == "4455"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_numbers_are_refused_when_reading_a_body(constant):
    with pytest.raises(ValueError, match="not a JSON number"):
        wire.loads(b'{"order_amount": ' + constant + b"}")


# -- outbound -----------------------------------------------------------------------------------------


def test_an_order_amount_is_written_with_exactly_two_decimals():
    body = wire.dumps(order_request("100.5"))

    assert b'"order_amount":100.50' in body


@pytest.mark.parametrize(
    ("amount", "text"), [("1", "1.00"), ("100.50", "100.50"), ("123456789.9", "123456789.90")]
)
def test_every_amount_is_written_as_a_number_with_two_decimals(amount, text):
    body = wire.dumps(CreateRefundRequest(refund_id="refund_1", refund_amount=Decimal(amount)))

    assert body == f'{{"refund_id":"refund_1","refund_amount":{text}}}'.encode()


def test_the_written_text_parses_back_to_the_same_amounts_and_fields():
    request = order_request(
        "2500.75",
        order_meta=OrderMeta(return_url="https://app.example/return?order_id=order_42"),
        order_tags={"plan": "pro"},
        order_expiry_time=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
    )

    document = json.loads(wire.dumps(request), parse_float=Decimal)

    assert document["order_amount"] == Decimal("2500.75")
    assert document["order_expiry_time"] == "2030-01-02T03:04:05+00:00"
    assert document["order_meta"] == {"return_url": "https://app.example/return?order_id=order_42"}
    assert "order_note" not in document


def test_the_written_text_validates_as_the_same_strict_request():
    request = order_request("99.9", order_note="three seats", order_tags={"plan": "pro"})

    assert CreateOrderRequest.model_validate_json(wire.dumps(request)) == request


def test_a_request_never_carries_more_than_two_decimals():
    with pytest.raises(ValidationError, match="decimal places"):
        order_request("10.005")


def test_a_float_amount_is_refused_before_anything_is_written():
    with pytest.raises(ValidationError):
        CreateRefundRequest(refund_id="refund_1", refund_amount=10.5)  # type: ignore[arg-type]


def test_an_order_amount_below_one_rupee_is_refused_as_the_spec_says():
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        order_request("0.99")


def test_unknown_request_fields_are_refused():
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        CreateRefundRequest(refund_id="refund_1", refund_amount=Decimal(1), surprise=True)  # type: ignore[call-arg]


def test_the_encoder_refuses_amounts_that_would_need_rounding_and_floats():
    with pytest.raises(ValueError, match="at most two decimals"):
        wire.amount_text(Decimal("1.234"))
    with pytest.raises(TypeError, match="float"):
        wire.encode({"amount": 1.5})


def test_the_first_page_request_leaves_the_cursor_out_and_later_pages_send_it():
    filters = ReconFilters(start_date="2025-01-01T00:00:00Z", end_date="2025-01-02T00:00:00Z")

    first = json.loads(wire.dumps(FetchReconRequest(pagination=Pagination(limit=50), filters=filters)))
    later = json.loads(
        wire.dumps(FetchReconRequest(pagination=Pagination(limit=50, cursor="abc"), filters=filters))
    )

    assert first["pagination"] == {"limit": 50}
    assert later["pagination"] == {"limit": 50, "cursor": "abc"}


def test_order_pay_with_a_upi_collect_is_written_with_one_payment_method_key():
    request = OrderPayRequest(
        payment_session_id="session_abc",
        payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id="testsuccess@gocash")),
    )

    assert json.loads(wire.dumps(request)) == {
        "payment_session_id": "session_abc",
        "payment_method": {"upi": {"channel": "collect", "upi_id": "testsuccess@gocash"}},
    }


def test_settlement_filters_are_written_with_only_what_was_given():
    request = FetchSettlementsRequest(
        pagination=Pagination(limit=10), filters=SettlementFilters(start_date="2025-01-01T00:00:00Z")
    )

    assert json.loads(wire.dumps(request)) == {
        "pagination": {"limit": 10},
        "filters": {"start_date": "2025-01-01T00:00:00Z"},
    }

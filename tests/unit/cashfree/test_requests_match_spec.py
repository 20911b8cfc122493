"""Every request body we build validates against the schema in Cashfree's OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from payments.bridges.cashfree import wire
from payments.bridges.cashfree.models import (
    CreateOrderRequest,
    CreateRefundRequest,
    CustomerDetails,
    FetchReconRequest,
    FetchSettlementsRequest,
    OrderMeta,
    OrderPayRequest,
    Pagination,
    ReconFilters,
    SettlementFilters,
    TerminateOrderRequest,
    Upi,
    UpiPaymentMethod,
)
from tests.cashfree_spec import body_schema_errors

_FILTERS = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-01-31T23:59:59Z"}

BODIES = {
    ("POST", "/orders"): CreateOrderRequest(
        order_id="order_42",
        order_amount=Decimal("100.5"),
        order_currency="INR",
        customer_details=CustomerDetails(
            customer_id="cust_7",
            customer_phone="9999999999",
            customer_email="a@example.com",
            customer_name="Asha",
        ),
        order_meta=OrderMeta(return_url="https://app.example/r", notify_url="https://api.example/hook"),
        order_expiry_time=datetime(2030, 1, 1, tzinfo=UTC),
        order_note="three seats",
        order_tags={"plan": "pro"},
    ),
    ("PATCH", "/orders/{order_id}"): TerminateOrderRequest(),
    ("POST", "/orders/sessions"): OrderPayRequest(
        payment_session_id="session_x",
        payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id="testsuccess@gocash")),
    ),
    ("POST", "/orders/{order_id}/refunds"): CreateRefundRequest(
        refund_id="refund_1",
        refund_amount=Decimal("10.1"),
        refund_note="partial refund",
        refund_speed="STANDARD",
    ),
    ("POST", "/settlements"): FetchSettlementsRequest(
        pagination=Pagination(limit=100, cursor="abc"), filters=SettlementFilters(**_FILTERS)
    ),
    ("POST", "/settlement/recon"): FetchSettlementsRequest(
        pagination=Pagination(limit=100), filters=SettlementFilters(**_FILTERS)
    ),
    ("POST", "/recon"): FetchReconRequest(pagination=Pagination(limit=100), filters=ReconFilters(**_FILTERS)),
}


@pytest.mark.parametrize(("method", "path"), list(BODIES), ids=" ".join)
def test_the_request_body_validates_against_the_operation_schema(method, path):
    body = json.loads(wire.dumps(BODIES[method, path]))

    assert body_schema_errors(path, method, body) == []


def test_the_schema_check_itself_catches_a_broken_body():
    assert body_schema_errors("/orders", "POST", {"order_amount": "100.50", "order_currency": "INR"}) != []

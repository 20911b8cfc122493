"""Cashfree's wire models become domain gateway types, and domain requests become Cashfree's."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from payments.bridges.cashfree import mapping
from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.errors import InvalidGatewayRequest, UnreadableResponse
from payments.bridges.cashfree.gateway import CashfreeGateway
from payments.bridges.cashfree.models import (
    OrderEntity,
    PaymentEntity,
    ReconRow,
    RefundEntity,
    SettlementEntity,
    SettlementReconRow,
)
from payments.domain.errors import GatewayRejected
from payments.domain.gateway import (
    AttemptStatus,
    Customer,
    GatewayOrderStatus,
    GatewayRefundStatus,
    OrderRequest,
    PaymentGateway,
    RefundRequest,
    RefundSpeed,
)
from payments.domain.money import Money

IST = timezone(timedelta(hours=5, minutes=30))


def test_the_gateway_satisfies_the_payment_gateway_port():
    client = CashfreeClient(base_url="http://127.0.0.1:1/pg", app_id="app", secret_key="secret")

    gateway: PaymentGateway = CashfreeGateway(client)

    assert gateway.name == "cashfree"
    members = [
        name
        for name in vars(PaymentGateway)
        if not name.startswith("_") and callable(vars(PaymentGateway)[name])
    ]
    assert len(members) == 12
    for name in members:
        assert inspect.signature(getattr(CashfreeGateway, name)) == inspect.signature(
            getattr(PaymentGateway, name)
        )


@pytest.mark.parametrize("status", [s for s in GatewayOrderStatus if s is not GatewayOrderStatus.UNKNOWN])
def test_every_order_status_cashfree_documents_maps_to_its_domain_status(status):
    order = mapping.to_order(
        OrderEntity(
            order_id="o1",
            cf_order_id="1",
            order_amount=Decimal(1),
            order_currency="INR",
            order_status=status.value,
        )
    )

    assert order.status is status


@pytest.mark.parametrize("status", [s for s in AttemptStatus if s is not AttemptStatus.UNKNOWN])
def test_every_payment_status_cashfree_documents_maps_to_its_attempt_status(status):
    payment = PaymentEntity(
        cf_payment_id="5", payment_amount=Decimal(1), payment_currency="INR", payment_status=status.value
    )

    assert mapping.to_attempt(payment, "o1").status is status


@pytest.mark.parametrize("status", [s for s in GatewayRefundStatus if s is not GatewayRefundStatus.UNKNOWN])
def test_every_refund_status_including_failed_maps_to_its_domain_status(status):
    refund = RefundEntity(
        refund_id="r1", refund_amount=Decimal(1), refund_currency="INR", refund_status=status.value
    )

    assert mapping.to_refund(refund, "o1").status is status


def test_statuses_cashfree_may_add_later_become_unknown_instead_of_a_guess():
    order = OrderEntity(
        order_id="o1",
        cf_order_id="1",
        order_amount=Decimal(1),
        order_currency="INR",
        order_status="PARTIALLY_PAID",
    )
    payment = PaymentEntity(
        cf_payment_id="5", payment_amount=Decimal(1), payment_currency="INR", payment_status="success"
    )
    refund = RefundEntity(refund_id="r1", refund_amount=Decimal(1), refund_currency="INR", refund_status=None)

    assert mapping.to_order(order).status is GatewayOrderStatus.UNKNOWN
    assert mapping.to_attempt(payment, "o1").status is AttemptStatus.UNKNOWN
    assert mapping.to_refund(refund, "o1").status is GatewayRefundStatus.UNKNOWN


def test_an_order_becomes_a_gateway_order_with_money_and_aware_times():
    entity = OrderEntity.model_validate(
        {
            "cf_order_id": 2149460581,
            "order_id": "order_42",
            "order_amount": Decimal("100.50"),
            "order_currency": "INR",
            "order_status": "ACTIVE",
            "payment_session_id": "session_abc",
            "created_at": "2025-01-10T12:00:00+05:30",
            "order_expiry_time": "2025-02-09 12:00:00",
        }
    )

    order = mapping.to_order(entity)

    assert order.gateway_order_id == "2149460581"
    assert order.amount == Money.of("100.50", "INR")
    assert order.session_id == "session_abc"
    assert order.created_at == datetime(2025, 1, 10, 6, 30, tzinfo=UTC)
    assert order.expires_at == datetime(2025, 2, 9, 12, 0, tzinfo=IST)


def test_an_unreadable_time_is_left_empty_rather_than_failing_the_record():
    assert mapping.parse_time("yesterday at noon") is None
    assert mapping.parse_time(None) is None


def test_a_failed_attempt_keeps_its_error_method_and_raw_record():
    entity = PaymentEntity.model_validate(
        {
            "cf_payment_id": 91,
            "payment_amount": Decimal("10.00"),
            "payment_currency": "INR",
            "payment_status": "FAILED",
            "payment_method": {"upi": {"channel": "collect", "upi_id": "testfailure@gocash"}},
            "error_details": {"error_code": "TRANSACTION_DECLINED", "error_reason": "auth_declined"},
            "payment_time": "2025-01-10T12:00:00+05:30",
        }
    )

    attempt = mapping.to_attempt(entity, "order_42")

    assert (attempt.attempt_id, attempt.order_id) == ("91", "order_42")
    assert attempt.method == "upi"
    assert (attempt.error_code, attempt.error_reason) == ("TRANSACTION_DECLINED", "auth_declined")
    assert attempt.raw["payment_amount"] == "10.00"
    assert attempt.raw["cf_payment_id"] == "91"


def test_a_refund_keeps_both_ids_and_the_bank_reference():
    entity = RefundEntity.model_validate(
        {
            "cf_refund_id": 77,
            "cf_payment_id": 91,
            "refund_id": "refund_1",
            "refund_amount": "5.5",
            "refund_currency": "INR",
            "refund_status": "SUCCESS",
            "refund_arn": "ARN123",
        }
    )

    refund = mapping.to_refund(entity, "order_42")

    assert (refund.gateway_refund_id, refund.attempt_id, refund.order_id) == ("77", "91", "order_42")
    assert refund.amount == Money.of("5.50", "INR")
    assert refund.bank_reference == "ARN123"


def test_a_settlement_nets_charges_in_rupees_when_no_currency_is_named():
    entity = SettlementEntity.model_validate(
        {
            "cf_settlement_id": 555,
            "order_id": "order_42",
            "cf_payment_id": 91,
            "order_amount": Decimal("100.00"),
            "order_currency": "INR",
            "service_charge": Decimal("2.00"),
            "service_tax": None,
            "settlement_amount": Decimal("98.00"),
            "transfer_utr": "UTR1",
            "transfer_time": "2025-01-11T10:00:00+05:30",
        }
    )

    settlement = mapping.to_settlement(entity)

    assert settlement.settlement_id == "555"
    assert settlement.service_charge == Money.of("2.00", "INR")
    assert settlement.service_tax == Money.zero("INR")
    assert settlement.settlement_amount == Money.of("98.00", "INR")
    assert settlement.utr == "UTR1"


def test_a_payment_reconciliation_row_becomes_an_entry():
    row = ReconRow.model_validate(
        {
            "event_id": 1001,
            "event_type": "PAYMENT",
            "event_amount": Decimal("100.00"),
            "event_currency": "INR",
            "event_settlement_amount": Decimal("97.64"),
            "event_status": "SUCCESS",
            "order_id": "order_42",
            "cf_payment_id": 91,
            "cf_settlement_id": 555,
            "settlement_utr": "UTR1",
            "sale_type": "CREDIT",
        }
    )

    entry = mapping.recon_entry(row)

    assert (entry.event_id, entry.event_type, entry.status) == ("1001", "PAYMENT", "SUCCESS")
    assert entry.amount == Money.of("100.00", "INR")
    assert entry.settlement_amount == Money.of("97.64", "INR")
    assert (entry.order_id, entry.attempt_id, entry.settlement_id, entry.utr) == (
        "order_42",
        "91",
        "555",
        "UTR1",
    )
    assert entry.raw["sale_type"] == "CREDIT"


def test_a_settlement_reconciliation_row_is_read_from_its_groups():
    row = SettlementReconRow.model_validate(
        {
            "event_details": {"event_id": "e1", "event_type": "REFUND", "event_amount": Decimal("5.00")},
            "order_details": {"order_id": "order_42", "order_currency": "INR"},
            "refund_details": {"refund_id": "refund_1"},
            "settlement_details": {"cf_settlement_id": 555, "utr": "UTR1"},
        }
    )

    entry = mapping.settlement_recon_entry(row)

    assert entry.amount == Money.of("5.00", "INR")
    assert entry.settlement_amount is None
    assert (entry.refund_id, entry.settlement_id, entry.utr, entry.attempt_id) == (
        "refund_1",
        "555",
        "UTR1",
        None,
    )


def test_an_answer_without_an_amount_is_unreadable():
    with pytest.raises(UnreadableResponse, match="order without an amount"):
        mapping.to_order(OrderEntity(order_id="o1", cf_order_id="1", order_currency="INR"))


def test_an_answer_in_a_currency_we_do_not_support_is_unreadable():
    with pytest.raises(UnreadableResponse, match="XYZ"):
        mapping.to_refund(RefundEntity(refund_id="r1", refund_amount=Decimal(1), refund_currency="XYZ"), "o1")


def test_an_answer_without_its_id_is_unreadable():
    with pytest.raises(UnreadableResponse, match="cf_payment_id"):
        mapping.to_attempt(PaymentEntity(payment_amount=Decimal(1), payment_currency="INR"), "o1")


def order(**changes) -> OrderRequest:
    fields = {
        "order_id": "order_42",
        "amount": Money.of("100.5", "INR"),
        "customer": Customer(
            customer_id="cust_7", phone="9876543210", email="asha@example.com", name="Asha K"
        ),
    }
    return OrderRequest(**(fields | changes))


def test_a_domain_order_becomes_cashfree_create_order_body():
    request = mapping.order_request(order(notify_url="https://api.example/hook", tags={"plan": "pro"}))

    assert (request.order_amount, request.order_currency) == (Decimal("100.50"), "INR")
    assert request.customer_details.customer_phone == "9876543210"
    assert request.order_meta is not None
    assert request.order_meta.notify_url == "https://api.example/hook"
    assert request.order_tags == {"plan": "pro"}


def test_an_order_without_urls_or_tags_sends_neither():
    request = mapping.order_request(order())

    assert request.order_meta is None
    assert request.order_tags is None


def test_an_order_cashfree_would_refuse_is_refused_before_sending_without_echoing_personal_data():
    customer = Customer(customer_id="cust_7", phone="+91 98765 43210")

    with pytest.raises(InvalidGatewayRequest) as caught:
        mapping.order_request(order(customer=customer))

    assert isinstance(caught.value, GatewayRejected)
    assert "customer_details.customer_phone" in str(caught.value)
    assert "98765" not in str(caught.value)
    assert caught.value.__context__ is None


def test_a_domain_refund_becomes_cashfree_create_refund_body():
    request = mapping.refund_request(
        RefundRequest(
            order_id="order_42",
            refund_id="refund_1",
            amount=Money.of("5", "INR"),
            note="partial refund",
            speed=RefundSpeed.INSTANT,
        )
    )

    assert (request.refund_id, request.refund_amount, request.refund_speed) == (
        "refund_1",
        Decimal("5.00"),
        "INSTANT",
    )

"""What each email says (``domain/notification/content.py``) and which kind a message asks for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from payments.domain.alerts.model import Alert, Severity
from payments.domain.errors import InvalidPayload
from payments.domain.gateway import RefundSpeed
from payments.domain.invoice.model import Invoice
from payments.domain.money import Money
from payments.domain.notification import content
from payments.domain.notification.content import Contacts
from payments.domain.notification.model import EmailKind, EmailRequest, email_id_for, kind_of
from payments.domain.payment.states import PaymentState
from payments.domain.refund.states import RefundState
from tests.contracts_payments import new_payment
from tests.contracts_refunds import new_refund

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CONTACTS = Contacts(
    support_email="help@commdesk.example",
    support_phone="+91 80 4000 0000",
    payment_retry_url="https://app.commdesk.example/pay/{paymentId}?again=1",
    admin_url="https://payments.commdesk.example/admin",
)


def an_invoice(payment_id: str = "pay_1", amount: str = "123456.5") -> Invoice:
    return Invoice(
        invoice_id="inv_1",
        number="INV-2026-000042",
        year=2026,
        sequence=42,
        payment_id=payment_id,
        user_id="user-1",
        amount=Money.of(amount, "INR"),
        issued_at=NOW,
        sha256="0" * 64,
    )


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("123456.5", "INR", "1,23,456.50"),  # rupees: the Indian grouping, as the invoice prints it
        ("12345678.9", "INR", "1,23,45,678.90"),
        ("999", "INR", "999.00"),
        ("0.1", "INR", "0.10"),
        ("123456.5", "USD", "123,456.50"),
        ("1000000", "USD", "1,000,000.00"),
        (Decimal("499.005"), "INR", "499.00"),  # rounded half-even, as Money rounds
        ("1500", "JPY", "1,500"),  # the currency's own decimals
    ],
)
def test_amounts_are_grouped_with_the_currencys_decimals(amount, currency, shown):
    assert content.format_amount(amount, currency) == shown


def test_times_are_shown_in_india_standard_time_with_the_zone_named():
    assert content.format_time(datetime(2026, 11, 26, 20, 0, tzinfo=UTC)) == "27 Nov 2026, 01:30 IST"
    assert content.format_time(datetime(2026, 3, 4, 20, 0)) == "5 Mar 2026, 01:30 IST"  # naive: UTC


@pytest.mark.parametrize(
    ("reason", "plain"),
    [
        ("auth_declined", "Your bank declined the payment."),
        ("AUTH_DECLINED", "Your bank declined the payment."),
        ("user_dropped", "The payment was not completed: the payment page was closed before it finished."),
        ("Insufficient balance in account", "There was not enough balance in the account."),
        ("OTP verification failed", "The one-time password (OTP) check did not succeed."),
        ("blocked by fraud screening", "We could not accept this payment."),
        ("something nobody mapped", content.FALLBACK_REASON),
        (None, content.FALLBACK_REASON),
        ("", content.FALLBACK_REASON),
    ],
)
def test_gateway_failure_reasons_read_as_plain_words(reason, plain):
    assert content.plain_failure_reason(reason) == plain


def test_a_success_email_names_the_payment_its_transaction_money_method_time_invoice_and_support():
    payment = replace(
        new_payment(),
        payment_id="pay_1",
        amount=Money.of("123456.5", "INR"),
        status=PaymentState.SUCCESS,
        gateway_payment_id="cf_5114917039291",
        payment_method="upi",
    )

    context = content.payment_success(
        payment, an_invoice(), paid_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC), contacts=CONTACTS
    )

    assert context["payment_id"] == "pay_1"
    assert context["transaction_id"] == "cf_5114917039291"
    assert (context["amount"], context["currency"], context["method"]) == ("1,23,456.50", "INR", "UPI")
    assert context["paid_at"] == "26 Nov 2026, 15:30 IST"
    assert context["invoice_number"] == "INV-2026-000042"
    assert (context["support_email"], context["support_phone"]) == (
        "help@commdesk.example",
        "+91 80 4000 0000",
    )


def test_a_failure_email_gives_the_reason_in_plain_words_a_retry_link_and_support():
    payment = replace(new_payment(), payment_id="pay_9", status=PaymentState.FAILED, failure_reason="x")

    context = content.payment_failed(payment, failure_reason="auth_declined", contacts=CONTACTS)

    assert context["reason"] == "Your bank declined the payment."
    assert context["retry_url"] == "https://app.commdesk.example/pay/pay_9?again=1"
    assert context["support_email"] == "help@commdesk.example"
    assert (context["amount"], context["currency"]) == ("499.00", "INR")


def test_a_failure_email_falls_back_on_the_payments_own_reason():
    payment = replace(new_payment(), status=PaymentState.FAILED, failure_reason="user_dropped")

    context = content.payment_failed(payment, failure_reason=None, contacts=CONTACTS)

    assert context["reason"].startswith("The payment was not completed")


@pytest.mark.parametrize(
    ("speed", "status", "eta"),
    [
        (RefundSpeed.INSTANT, "PROCESSING", "within minutes"),
        (
            RefundSpeed.STANDARD,
            "PROCESSING",
            "within 5 to 7 working days (your bank's usual time for refunds)",
        ),
        (
            RefundSpeed.STANDARD,
            "SUCCESS",
            "The refund is complete; your bank may take a little longer to show it.",
        ),
        (RefundSpeed.INSTANT, "FAILED", "No money is on its way; please contact support."),
    ],
)
def test_a_refund_email_gives_the_amount_status_and_arrival_by_speed(speed, status, eta):
    refund = new_refund(
        new_payment(), amount=Money.of("2500", "INR"), speed=speed, status=RefundState.PROCESSING
    )

    context = content.payment_refund(refund, status=status, status_description=None, contacts=CONTACTS)

    assert (context["amount"], context["currency"]) == ("2,500.00", "INR")
    assert context["status_code"] == status
    assert context["eta"] == eta
    assert context["support_phone"] == "+91 80 4000 0000"


def test_an_invoice_email_for_billing_names_the_invoice_payment_and_amount():
    context = content.invoice_generated(an_invoice())

    assert context == {
        "invoice_number": "INV-2026-000042",
        "payment_id": "pay_1",
        "amount": "1,23,456.50",
        "currency": "INR",
        "issued_at": "26 Nov 2026, 15:30 IST",
    }


def an_alert_message() -> dict:
    alert = Alert(
        kind="payment_failure_rate",
        subject="method:upi",
        severity=Severity.CRITICAL,
        title="Payment failures at 80% over 5 min",
        details={"failed": 8, "succeeded": 2, "failureRate": "0.8", "window_seconds": 300},
        since=datetime(2026, 11, 26, 9, 55, tzinfo=UTC),
        raised_at=NOW,
        source="alerts",
    )
    return alert.message()


def test_an_alert_email_says_what_happened_since_when_the_numbers_and_links_the_admin_page():
    request = EmailRequest.model_validate(an_alert_message())

    context = content.admin_alert(request, contacts=CONTACTS)

    assert context["title"] == "Payment failures at 80% over 5 min"
    assert context["severity"] == "CRITICAL"
    assert context["since"] == "26 Nov 2026, 15:25 IST"
    assert context["details"] == [
        ("Failed", "8"),
        ("Succeeded", "2"),
        ("Failure rate", "0.8"),
        ("Window seconds", "300"),
    ]
    assert context["admin_url"] == "https://payments.commdesk.example/admin"


@pytest.mark.parametrize(
    ("payload", "routing_key", "kind"),
    [
        ({"type": "email.payment.failed", "paymentId": "p"}, "emails.outgoing", EmailKind.PAYMENT_FAILED),
        ({"paymentId": "p", "invoiceId": "i"}, "email.payment.success", EmailKind.PAYMENT_SUCCESS),
        # Back from a retry tier, the routing key is the queue's name: the shape decides.
        ({"paymentId": "p", "invoiceId": "i"}, "emails.outgoing", EmailKind.PAYMENT_SUCCESS),
        ({"paymentId": "p", "invoiceId": "i", "amount": "1"}, "emails.outgoing", EmailKind.INVOICE_GENERATED),
        (
            {"refundId": "r", "paymentId": "p", "status": "SUCCESS"},
            "emails.outgoing",
            EmailKind.PAYMENT_REFUND,
        ),
        (an_alert_message(), "emails.outgoing", EmailKind.ADMIN_ALERT),
    ],
)
def test_the_kind_comes_from_the_type_the_routing_key_or_the_shape(payload, routing_key, kind):
    assert kind_of(EmailRequest.model_validate(payload), routing_key) is kind


@pytest.mark.parametrize(
    "payload",
    [
        {"paymentId": "p"},  # nothing tells the kind
        {"type": "email.payment.refund", "paymentId": "p"},  # a refund email without its refund
        {"type": "email.admin.alert", "title": "x"},  # an alert without its id
    ],
)
def test_a_message_that_is_no_email_we_know_is_refused(payload):
    with pytest.raises(InvalidPayload):
        kind_of(EmailRequest.model_validate(payload), "emails.outgoing")


def test_an_emails_id_is_stable_per_event_kind_and_recipient():
    first = email_id_for("evt_1", EmailKind.ADMIN_ALERT, "d1")

    assert email_id_for("evt_1", EmailKind.ADMIN_ALERT, "d1") == first
    assert len({first, email_id_for("evt_2", EmailKind.ADMIN_ALERT, "d1")}) == 2
    assert len({first, email_id_for("evt_1", EmailKind.PAYMENT_FAILED, "d1")}) == 2
    assert len({first, email_id_for("evt_1", EmailKind.ADMIN_ALERT, "d2")}) == 2

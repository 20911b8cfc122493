"""The Jinja2 templates of every email: both parts present, HTML escaped, the subject one line."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from jinja2 import UndefinedError

from payments.bridges.templates.renderer import JinjaEmailRenderer
from payments.domain.notification.model import EmailKind

HOSTILE = '<script>alert("x")</script> & Co'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co"

SUPPORT = {"support_email": "help@commdesk.example", "support_phone": "+91 80 4000 0000"}
CONTEXTS: dict[EmailKind, dict[str, Any]] = {
    EmailKind.PAYMENT_SUCCESS: {
        "payment_id": "pay_1",
        "transaction_id": "cf_5114917039291",
        "amount": "123,456.50",
        "currency": "INR",
        "method": "UPI",
        "paid_at": "26 Nov 2026, 15:30 IST",
        "description": HOSTILE,
        "invoice_number": "INV-2026-000042",
        "customer_name": HOSTILE,
        **SUPPORT,
    },
    EmailKind.PAYMENT_FAILED: {
        "payment_id": "pay_1",
        "amount": "499.00",
        "currency": "INR",
        "reason": HOSTILE,
        "retry_url": "https://app.commdesk.example/pay/pay_1?a=1&b=2",
        "customer_name": "",
        **SUPPORT,
    },
    EmailKind.PAYMENT_REFUND: {
        "refund_id": "rf_1",
        "payment_id": "pay_1",
        "amount": "2,500.00",
        "currency": "INR",
        "status": "On its way",
        "status_code": "PROCESSING",
        "status_note": HOSTILE,
        "eta": "within 5 to 7 working days (your bank's usual time for refunds)",
        **SUPPORT,
    },
    EmailKind.INVOICE_GENERATED: {
        "invoice_number": "INV-2026-000042",
        "payment_id": HOSTILE,
        "amount": "123,456.50",
        "currency": "INR",
        "issued_at": "26 Nov 2026, 15:30 IST",
    },
    EmailKind.ADMIN_ALERT: {
        "title": HOSTILE,
        "severity": "CRITICAL",
        "kind": "payment_failure_rate",
        "subject": "method:upi",
        "since": "26 Nov 2026, 15:25 IST",
        "raised_at": "26 Nov 2026, 15:30 IST",
        "source": "alerts",
        "details": [("Failed", "8"), ("Failure rate", HOSTILE)],
        "admin_url": "https://payments.commdesk.example/admin",
    },
}
#: What each kind's text and HTML must show (besides the hostile string, checked separately).
MUST_SHOW: dict[EmailKind, tuple[str, ...]] = {
    EmailKind.PAYMENT_SUCCESS: (
        "pay_1",
        "cf_5114917039291",
        "INR 123,456.50",
        "UPI",
        "15:30 IST",
        "INV-2026-000042",
    ),
    EmailKind.PAYMENT_FAILED: ("INR 499.00", "pay_1", "help@commdesk.example", "+91 80 4000 0000"),
    EmailKind.PAYMENT_REFUND: ("INR 2,500.00", "On its way", "5 to 7 working days", "rf_1"),
    EmailKind.INVOICE_GENERATED: ("INV-2026-000042", "INR 123,456.50", "15:30 IST"),
    EmailKind.ADMIN_ALERT: (
        "CRITICAL",
        "15:25 IST",
        "Failed",
        "8",
        "https://payments.commdesk.example/admin",
    ),
}


class _Checker(HTMLParser):
    """Collects tags and text; an HTML body must parse into balanced, script-free markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def renderer() -> JinjaEmailRenderer:
    return JinjaEmailRenderer()


@pytest.mark.parametrize("kind", list(EmailKind))
def test_every_kind_renders_a_one_line_subject_a_text_part_and_a_table_html_part(renderer, kind):
    email = renderer.render(kind, CONTEXTS[kind])

    assert email.subject
    assert "\n" not in email.subject
    assert "\r" not in email.subject
    for shown in MUST_SHOW[kind]:
        assert shown in email.text, f"{shown!r} missing from the text of {kind}"
        assert shown in email.html, f"{shown!r} missing from the HTML of {kind}"
    checker = _Checker()
    checker.feed(email.html)
    assert "table" in checker.tags
    assert "script" not in checker.tags
    # The text part is not HTML.
    assert "<table" not in email.text
    assert "<p" not in email.text


@pytest.mark.parametrize("kind", list(EmailKind))
def test_the_html_part_escapes_what_the_context_carries_and_the_text_part_keeps_it(renderer, kind):
    email = renderer.render(kind, CONTEXTS[kind])

    assert HOSTILE not in email.html
    assert ESCAPED in email.html
    assert HOSTILE in email.text


def test_a_link_keeps_its_query_in_the_html_escaped_as_an_attribute(renderer):
    email = renderer.render(EmailKind.PAYMENT_FAILED, CONTEXTS[EmailKind.PAYMENT_FAILED])

    assert 'href="https://app.commdesk.example/pay/pay_1?a=1&amp;b=2"' in email.html
    assert "https://app.commdesk.example/pay/pay_1?a=1&b=2" in email.text


def test_a_line_break_in_a_subject_value_is_folded_into_one_line(renderer):
    context = {**CONTEXTS[EmailKind.ADMIN_ALERT], "title": "first\r\nBcc: someone@example.com"}

    email = renderer.render(EmailKind.ADMIN_ALERT, context)

    assert email.subject == "[CRITICAL] first Bcc: someone@example.com"


def test_a_context_missing_a_field_is_an_error_not_a_blank(renderer):
    context = dict(CONTEXTS[EmailKind.PAYMENT_SUCCESS])
    del context["invoice_number"]

    with pytest.raises(UndefinedError):
        renderer.render(EmailKind.PAYMENT_SUCCESS, context)


def test_an_alert_without_numbers_says_so(renderer):
    email = renderer.render(EmailKind.ADMIN_ALERT, {**CONTEXTS[EmailKind.ADMIN_ALERT], "details": []})

    assert "(none recorded)" in email.text
    assert "(none recorded)" in email.html

"""The invoice PDF: one page that reads back with its number and amounts, the same bytes every time."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from pypdf import PdfReader

from payments.bridges.documents.invoice_pdf import InvoicePdf, _paragraph, format_amount, latin1
from payments.domain.invoice.document import InvoiceDetails, Issuer
from payments.domain.invoice.model import Invoice
from payments.domain.money import Money

ISSUED_AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
INVOICE = Invoice(
    invoice_id="inv_1",
    number="INV-2026-000042",
    year=2026,
    sequence=42,
    payment_id="pay_abc123",
    user_id="user-1",
    amount=Money.of("1499.00", "INR"),
    issued_at=ISSUED_AT,
    sha256="",
)
DETAILS = InvoiceDetails(
    issuer=Issuer(
        name="CommDesk Technologies Pvt. Ltd.",
        address="Indiranagar, Bengaluru, Karnataka 560038, India",
        tax_id="29ABCDE1234F1Z5",
        support_email="support@commdesk.example",
        support_phone="+91 80 4000 0000",
    ),
    customer_name="Asha Rao",
    customer_account="user-1",
    description="CommDesk Pro - annual plan",
    payment_id="pay_abc123",
    order_id="ord_abc123",
    payment_method="upi",
    gateway_payment_id="5114910948",
    paid_at=datetime(2026, 11, 26, 9, 58, tzinfo=UTC),
)


def text_of(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_the_invoice_is_one_page_that_shows_its_number_amount_and_payment():
    pages, text = text_of(InvoicePdf().render(INVOICE, DETAILS))

    assert pages == 1
    for shown in (
        "INVOICE",
        "CommDesk Technologies Pvt. Ltd.",
        "GSTIN / Tax ID: 29ABCDE1234F1Z5",
        "INV-2026-000042",
        "26 Nov 2026",
        "Asha Rao",
        "CommDesk Pro - annual plan",
        "INR 1,499.00",
        "PAID",
        "5114910948",
        "UPI",
        "26 Nov 2026, 15:28 IST",
        "ord_abc123",
        "support@commdesk.example",
        "+91 80 4000 0000",
    ):
        assert shown in text, f"{shown!r} is not on the invoice"


def test_the_customers_email_and_phone_are_never_on_the_invoice():
    _, text = text_of(InvoicePdf().render(INVOICE, DETAILS))

    assert "@example.com" not in text
    assert "9876543210" not in text


def test_the_same_invoice_renders_to_the_same_bytes_whenever_it_is_drawn():
    first = InvoicePdf().render(INVOICE, DETAILS)
    again = InvoicePdf().render(replace(INVOICE, sha256="a" * 64), DETAILS)  # the hash is not drawn

    assert first == again
    assert f"/CreationDate (D:{ISSUED_AT:%Y%m%d%H%M%S}".encode() in first


def test_another_invoice_renders_to_other_bytes():
    first = InvoicePdf().render(INVOICE, DETAILS)
    other = InvoicePdf().render(replace(INVOICE, number="INV-2026-000043", sequence=43), DETAILS)

    assert first != other
    assert "INV-2026-000043" in text_of(other)[1]


def test_the_tax_id_line_is_left_out_when_no_tax_id_is_set():
    details = replace(DETAILS, issuer=replace(DETAILS.issuer, tax_id=None))

    _, text = text_of(InvoicePdf().render(INVOICE, details))

    assert "Tax ID" not in text


def test_an_invoice_without_a_name_attempt_or_method_still_says_whose_it_is():
    details = replace(DETAILS, customer_name=None, payment_method=None, gateway_payment_id=None, paid_at=None)

    pages, text = text_of(InvoicePdf().render(INVOICE, details))

    assert pages == 1
    assert "CommDesk customer" in text
    assert "Account user-1" in text


def test_the_longest_texts_the_api_allows_still_fit_on_one_page():
    details = replace(DETAILS, customer_name="N" * 100, description="word " * 40)

    pages, text = text_of(InvoicePdf().render(INVOICE, details))

    assert pages == 1
    assert "support@commdesk.example" in text


def test_text_outside_latin_1_is_drawn_plainly_instead_of_failing():
    details = replace(
        DETAILS,
        customer_name="José \u2018Pepe\u2019 Núñez \u2013 आशा",
        description="Plan \u2014 \u20b9 pricing\u2026",
    )

    _, text = text_of(InvoicePdf().render(INVOICE, details))

    assert "José 'Pepe' Núñez - ???" in text
    assert "Plan - INR pricing..." in text


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1499", "INR", "INR 1,499.00"),
        ("0.5", "INR", "INR 0.50"),
        ("999.99", "INR", "INR 999.99"),
        ("123456.78", "INR", "INR 1,23,456.78"),
        ("10000000", "INR", "INR 1,00,00,000.00"),
        ("1234567.89", "USD", "USD 1,234,567.89"),
        ("1500", "JPY", "JPY 1,500"),
        # More digits than a float holds exactly: formatted from the Decimal, nothing lost.
        ("9007199254740993.01", "USD", "USD 9,007,199,254,740,993.01"),
    ],
)
def test_amounts_are_formatted_exactly_from_the_decimal(amount, currency, shown):
    assert format_amount(Money.of(amount, currency)) == shown


def test_latin_1_text_is_kept_as_it_is():
    kept = "Zoë Ødegård, 3 \u00d7 2 ½ €"

    assert latin1(kept) == "Zoë Ødegård, 3 \u00d7 2 ½ ?"  # the euro sign is Windows-1252, not Latin-1


@pytest.mark.parametrize(
    "text",
    [
        "Questions about this invoice? Write to support@commdesk.example or call +91 80 4000 0000.",
        "Asha Rao",
        "Indiranagar, Bengaluru, Karnataka 560038, India, " * 4,  # wraps: multi_cell draws it
        " padded ",
        "two\nlines",
    ],
)
def test_a_paragraph_draws_the_same_bytes_as_multi_cell(text):
    """The one-line shortcut must never change a document, whatever fpdf2 version draws it."""

    def drawn(draw) -> bytes:
        pdf = FPDF(unit="mm", format="A4")
        pdf.set_creation_date(ISSUED_AT)
        pdf.add_page()
        pdf.set_font("Helvetica", "", 9)
        draw(pdf)
        pdf.cell(20, 5, "after")  # where the paragraph left the cursor shows too
        return bytes(pdf.output())

    shortcut = drawn(lambda pdf: _paragraph(pdf, 120, 4.5, text, new_x=XPos.LEFT))
    reference = drawn(lambda pdf: pdf.multi_cell(120, 4.5, text, new_x=XPos.LEFT, new_y=YPos.NEXT))
    assert shortcut == reference

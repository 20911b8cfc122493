"""Invoice PDFs with fpdf2 (``InvoiceRenderer``): one A4 page, the same bytes for the same invoice.

Determinism: the document's creation date is the invoice's ``issued_at`` (fpdf2 would stamp the wall
clock, and derives the file's /ID from it), and dates are spelt with our own month names, not the
process locale's. Re-drawing a stored invoice therefore reproduces its SHA-256 exactly (for the same
fpdf2 version, whose name is in the document).

Fonts: only the PDF core fonts (Helvetica), which every viewer has and which need no font file in the
package. They cover Latin-1 only; there is no rupee sign (U+20B9) in them, so amounts read
``INR 1,499.00``, and other text is folded to Latin-1 (accents kept where Latin-1 has them, typographic
quotes and dashes made plain, anything else a ``?``). Rupee amounts are grouped the Indian way
(``INR 1,23,456.00``), the form Indian invoices use; other currencies by thousands.

Money is formatted from the ``Decimal`` itself; a float never touches an amount.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Final

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from payments.domain.invoice.document import InvoiceDetails
from payments.domain.invoice.model import ISSUER_TIMEZONE, Invoice
from payments.domain.money import Money

#: Page geometry, in millimetres (A4 portrait).
PAGE_WIDTH: Final = 210.0
MARGIN: Final = 18.0
CONTENT_WIDTH: Final = PAGE_WIDTH - 2 * MARGIN
#: Colours (RGB): body text, quiet text, rules and fills, and the "Paid" mark.
INK: Final = (33, 37, 41)
MUTED: Final = (108, 117, 125)
RULE: Final = (206, 212, 218)
FILL: Final = (241, 243, 245)
PAID_GREEN: Final = (25, 135, 84)
#: Longest texts drawn, so everything stays on one page (the API caps them lower already).
MAX_NAME: Final = 100
MAX_DESCRIPTION: Final = 200
#: Room (mm) a one-line text must leave in its cell to be drawn without line breaking (``_paragraph``).
_FIT_SLACK: Final = 1.0
#: Locale-independent month names: the process locale must not change the bytes.
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Characters outside Latin-1 that have a plain equivalent.
_PLAIN: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u20b9": "INR ",
        "\u00a0": " ",
    }
)


class InvoicePdf:
    """Draws an invoice on one A4 page: issuer, number and dates, customer, the line, payment, "Paid"."""

    def render(self, invoice: Invoice, details: InvoiceDetails) -> bytes:
        pdf = _new_document(invoice, details)
        _header(pdf, invoice, details)
        _parties(pdf, invoice, details)
        _line_items(pdf, invoice, details)
        _payment(pdf, invoice, details)
        _footer(pdf, details)
        return bytes(pdf.output())


def format_amount(money: Money) -> str:
    """``INR 1,499.00``: exact from the Decimal, in the currency's minor unit."""
    places = Money.places(money.currency)
    text = f"{abs(money.amount):.{places}f}"  # Decimal formatting: exact, never through a float
    whole, _, fraction = text.partition(".")
    grouped = _indian_grouping(whole) if money.currency == "INR" else f"{int(whole):,}"
    sign = "-" if money.amount < 0 else ""
    return f"{money.currency} {sign}{grouped}{'.' + fraction if fraction else ''}"


def format_date(moment: datetime) -> str:
    local = moment.astimezone(ISSUER_TIMEZONE)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def format_time(moment: datetime) -> str:
    local = moment.astimezone(ISSUER_TIMEZONE)
    return f"{format_date(local)}, {local:%H:%M} IST"


def latin1(text: str) -> str:
    """``text`` as the core fonts can draw it (see the module docstring)."""
    folded = []
    for char in unicodedata.normalize("NFC", text.translate(_PLAIN)):
        if ord(char) < 256:
            folded.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        folded.append(base if base and all(ord(c) < 256 for c in base) else "?")
    return "".join(folded)


def _indian_grouping(digits: str) -> str:
    # The last three digits, then pairs: 12,34,567.
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    pairs: list[str] = []
    while len(head) > 2:
        pairs.insert(0, head[-2:])
        head = head[:-2]
    return ",".join([head, *pairs, tail])


def _clip(text: str, limit: int) -> str:
    # Folded first, so a replacement ("INR " for the rupee sign) cannot leave a double space behind.
    text = " ".join(latin1(text).split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _new_document(invoice: Invoice, details: InvoiceDetails) -> FPDF:
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_creation_date(invoice.issued_at)
    pdf.set_title(f"Invoice {invoice.number}")
    pdf.set_author(latin1(details.issuer.name))
    pdf.set_creator("CommDesk Payments")
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    # One page by construction (texts are clipped), so a page break would be a layout bug, not overflow.
    pdf.set_auto_page_break(auto=False)
    pdf.add_page()
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*RULE)
    return pdf


def _font(pdf: FPDF, size: float, style: str = "", color: tuple[int, int, int] = INK) -> None:
    pdf.set_font("Helvetica", style, size)
    pdf.set_text_color(*color)


def _paragraph(pdf: FPDF, width: float, height: float, text: str, *, new_x: XPos) -> None:
    """``multi_cell`` (then the next line), drawn with ``cell`` when the text surely fits on one line.

    fpdf2's line breaking measures the line again for every character it adds, which made half of an
    invoice's drawing time. A text that fits on one line comes out of ``cell`` byte for byte as it
    does out of ``multi_cell``; anything that may wrap, or whose spaces line breaking could trim,
    still goes through ``multi_cell``.
    """
    fits = pdf.get_string_width(text) < width - 2 * pdf.c_margin - _FIT_SLACK
    if fits and text == text.strip() and "\n" not in text:
        pdf.cell(width, height, text, new_x=new_x, new_y=YPos.NEXT)
    else:
        pdf.multi_cell(width, height, text, new_x=new_x, new_y=YPos.NEXT)


def _text_line(pdf: FPDF, width: float, height: float, text: str, align: str = "L") -> None:
    pdf.cell(width, height, latin1(text), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _header(pdf: FPDF, invoice: Invoice, details: InvoiceDetails) -> None:
    issuer = details.issuer
    top = pdf.get_y()
    _font(pdf, 20, "B")
    pdf.set_xy(MARGIN, top)
    pdf.cell(CONTENT_WIDTH, 10, "INVOICE", align="R")
    pdf.set_xy(MARGIN, top)
    _font(pdf, 15, "B")
    _text_line(pdf, CONTENT_WIDTH * 0.65, 8, _clip(issuer.name, 60))
    _font(pdf, 9, color=MUTED)
    _paragraph(pdf, CONTENT_WIDTH * 0.65, 4.5, latin1(_clip(issuer.address, 300)), new_x=XPos.LMARGIN)
    if issuer.tax_id:
        _text_line(pdf, CONTENT_WIDTH * 0.65, 4.5, f"GSTIN / Tax ID: {issuer.tax_id}")
    pdf.ln(4)
    _rule(pdf)


def _parties(pdf: FPDF, invoice: Invoice, details: InvoiceDetails) -> None:
    top = pdf.get_y() + 4
    facts = (
        ("Invoice number", invoice.number),
        ("Issue date", format_date(invoice.issued_at)),
        ("Payment ID", invoice.payment_id),
    )
    pdf.set_xy(MARGIN, top)
    for label, value in facts:
        _font(pdf, 9, color=MUTED)
        pdf.cell(32, 6, label)
        _font(pdf, 10, "B" if label == "Invoice number" else "")
        pdf.cell(62, 6, latin1(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()

    column = MARGIN + CONTENT_WIDTH * 0.58
    width = CONTENT_WIDTH * 0.42
    pdf.set_xy(column, top)
    _font(pdf, 9, color=MUTED)
    pdf.cell(width, 6, "Billed to", new_x=XPos.LEFT, new_y=YPos.NEXT)
    _font(pdf, 10, "B")
    name = _clip(details.customer_name or "CommDesk customer", MAX_NAME)
    _paragraph(pdf, width, 5, latin1(name), new_x=XPos.LEFT)
    _font(pdf, 9, color=MUTED)
    _paragraph(pdf, width, 5, latin1(f"Account {details.customer_account}"), new_x=XPos.LEFT)
    pdf.set_xy(MARGIN, max(left_bottom, pdf.get_y()) + 6)


def _line_items(pdf: FPDF, invoice: Invoice, details: InvoiceDetails) -> None:
    amount_width = 48.0
    description_width = CONTENT_WIDTH - amount_width
    pdf.set_fill_color(*FILL)
    _font(pdf, 9, "B", color=MUTED)
    pdf.cell(description_width, 8, "  Description", fill=True)
    pdf.cell(amount_width, 8, "Amount  ", fill=True, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    top = pdf.get_y() + 2
    pdf.set_xy(MARGIN, top)
    _font(pdf, 10)
    description = latin1(_clip(details.description, MAX_DESCRIPTION))
    pdf.multi_cell(description_width, 5.5, description, padding=(0, 0, 0, 2), new_x=XPos.LMARGIN)
    bottom = pdf.get_y()
    pdf.set_xy(MARGIN + description_width, top)
    pdf.cell(amount_width, 5.5, format_amount(invoice.amount) + "  ", align="R")
    pdf.set_xy(MARGIN, max(bottom, top + 5.5) + 3)
    _rule(pdf)

    label_width = 40.0
    label_x = MARGIN + CONTENT_WIDTH - amount_width - label_width
    paid = Money.zero(invoice.amount.currency)
    for label, value, bold in (
        ("Total", invoice.amount, True),
        ("Amount paid", invoice.amount, False),
        ("Balance due", paid, False),
    ):
        pdf.set_x(label_x)
        _font(pdf, 10, "B" if bold else "", INK if bold else MUTED)
        pdf.cell(label_width, 7, label)
        pdf.cell(amount_width, 7, format_amount(value) + "  ", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _paid_mark(pdf, x=MARGIN + 4, y=pdf.get_y() - 19)
    pdf.ln(6)


def _paid_mark(pdf: FPDF, *, x: float, y: float) -> None:
    pdf.set_draw_color(*PAID_GREEN)
    pdf.set_line_width(0.8)
    pdf.rect(x, y, 36, 14, style="D", round_corners=True, corner_radius=2)
    _font(pdf, 18, "B", PAID_GREEN)
    pdf.set_xy(x, y + 2)
    pdf.cell(36, 10, "PAID", align="C")
    pdf.set_line_width(0.2)
    pdf.set_draw_color(*RULE)
    pdf.set_xy(MARGIN, y + 19)


def _payment(pdf: FPDF, invoice: Invoice, details: InvoiceDetails) -> None:
    _font(pdf, 11, "B")
    _text_line(pdf, CONTENT_WIDTH, 8, "Payment details")
    rows = (
        ("Transaction ID", details.gateway_payment_id or "-"),
        ("Payment method", _method(details.payment_method)),
        ("Paid at", format_time(details.paid_at) if details.paid_at else "-"),
        ("Amount paid", format_amount(invoice.amount)),
        ("Order ID", details.order_id),
    )
    for label, value in rows:
        _font(pdf, 9, color=MUTED)
        pdf.cell(40, 6, label)
        _font(pdf, 10)
        pdf.cell(CONTENT_WIDTH - 40, 6, latin1(_clip(value, 80)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _footer(pdf: FPDF, details: InvoiceDetails) -> None:
    issuer = details.issuer
    pdf.set_y(-36)
    _rule(pdf)
    pdf.ln(3)
    _font(pdf, 9)
    contact = f"Questions about this invoice? Write to {issuer.support_email} or call {issuer.support_phone}."
    _paragraph(pdf, CONTENT_WIDTH, 4.5, latin1(contact), new_x=XPos.LMARGIN)
    _font(pdf, 8, color=MUTED)
    note = f"Issued electronically by {_clip(issuer.name, 80)}; no signature is required."
    _paragraph(pdf, CONTENT_WIDTH, 4.5, latin1(note), new_x=XPos.LMARGIN)


def _rule(pdf: FPDF) -> None:
    y = pdf.get_y()
    pdf.line(MARGIN, y, MARGIN + CONTENT_WIDTH, y)


def _method(method: str | None) -> str:
    # Cashfree names methods in lower case ("upi", "card", "netbanking").
    known = {"upi": "UPI", "card": "Card", "netbanking": "Net banking", "app": "Wallet", "emi": "EMI"}
    if not method:
        return "-"
    return known.get(method.lower(), method.replace("_", " ").capitalize())

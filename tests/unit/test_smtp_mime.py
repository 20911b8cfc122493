"""``to_mime``: the MIME shape of an email (``bridges/smtp/sender.py``); no network."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy as email_policy

import pytest
from aiosmtplib.email import flatten_message

from payments.bridges.smtp import sender
from payments.bridges.smtp.sender import to_mime
from payments.domain.notification.sending import Attachment, EmailMessage, EmailRefused

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def an_email(**changes) -> EmailMessage:
    fields = {
        "message_id": "<eml_1@payments.commdesk.example>",
        "sender": "CommDesk Payments <payments@commdesk.example>",
        "recipients": ("a@one.example", "b@two.example"),
        "subject": "Refund started",
        "text": "Your refund is on its way.",
        "html": "<p>Your refund is on its way.</p>",
    }
    return EmailMessage(**{**fields, **changes})


def test_an_email_without_attachments_is_text_and_html_alternatives():
    mime = to_mime(an_email(), now=NOW)

    assert mime.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in mime.iter_parts()] == ["text/plain", "text/html"]
    assert mime["Date"] == "Wed, 25 Nov 2026 09:30:00 +0000"
    assert mime["To"] == "a@one.example, b@two.example"


def test_attachments_follow_the_alternatives_in_a_mixed_message():
    pdf = Attachment("INV-2026-000007.pdf", "application/pdf", b"%PDF-1.4 ...")
    odd = Attachment("notes", "text", b"plain bytes")

    mime = to_mime(an_email(attachments=(pdf, odd)), now=NOW)

    assert mime.get_content_type() == "multipart/mixed"
    assert [part.get_content_type() for part in mime.iter_parts()] == [
        "multipart/alternative",
        "application/pdf",
        "application/octet-stream",
    ]
    assert [part.get_filename() for part in mime.iter_attachments()] == ["INV-2026-000007.pdf", "notes"]


def test_extra_headers_are_added_after_the_standard_ones():
    mime = to_mime(an_email(headers=(("X-CommDesk-Email-Kind", "email.payment.refund"),)), now=NOW)

    assert mime["X-CommDesk-Email-Kind"] == "email.payment.refund"
    assert list(mime.keys())[:6] == ["Message-ID", "Date", "From", "To", "Subject", "X-CommDesk-Email-Kind"]


@pytest.mark.parametrize("field", ["subject", "message_id"])
def test_a_line_break_in_a_header_is_refused_not_sent(field):
    with pytest.raises(EmailRefused, match="header"):
        to_mime(an_email(**{field: "x\r\nBcc: everyone@example.com"}), now=NOW)


def test_the_bytes_are_those_of_the_standard_policy_although_header_classes_are_reused(monkeypatch):
    """``MIME_POLICY`` only makes each header class once; the message on the wire must not change."""
    email = an_email(
        subject="Payment received: ₹1,499.00 — thank you",
        html="<p>" + "A long line of HTML that mail servers fold. " * 6 + "</p>",
        attachments=(Attachment("INV-2026-000007.pdf", "application/pdf", bytes(range(256)) * 4),),
        headers=(("X-CommDesk-Email-Kind", "payment.success"),),
    )
    reused = to_mime(email, now=NOW)
    monkeypatch.setattr(sender, "MIME_POLICY", email_policy.default)  # what EmailMessage() uses alone
    standard = to_mime(email, now=NOW)

    assert reused.policy is not standard.policy
    assert _numbered_boundaries(flatten_message(reused)) == _numbered_boundaries(flatten_message(standard))


def _numbered_boundaries(flat: bytes) -> bytes:
    """``flat`` with its random MIME boundaries numbered in order of appearance."""
    for number, boundary in enumerate(dict.fromkeys(re.findall(rb'boundary="([^"]+)"', flat))):
        flat = flat.replace(boundary, b"boundary-%d" % number)
    return flat

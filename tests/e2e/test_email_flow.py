"""Through the whole product: a paid payment earns an invoice, the customer gets the receipt with the
PDF, the books get a copy, the owner can download it; a declined attempt and a refund are mailed too."""

from __future__ import annotations

import io
import uuid
from email.message import EmailMessage

from pypdf import PdfReader

from payments.agents.email import KIND_HEADER
from tests.waiting import eventually


def mails_of(stack, kind: str, to: str) -> list[EmailMessage]:
    return [m for m in stack.mail.messages if m[KIND_HEADER] == kind and to in str(m["To"])]


def pdf_of(message: EmailMessage) -> bytes:
    [attachment] = [
        part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"
    ]
    return attachment.get_content()


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


async def test_a_paid_payment_is_mailed_with_its_invoice_and_the_invoice_downloads(stack):
    user, customer = f"user-mail-{uuid.uuid4().hex[:8]}", f"asha-{uuid.uuid4().hex[:8]}@example.com"
    payment = await (await stack.create(user, amount="1499.00", email=customer)).json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    await stack.verify(user, payment["paymentId"])

    await eventually(lambda: mails_of(stack, "payment_success", customer), timeout=30, what="the receipt")
    [receipt] = mails_of(stack, "payment_success", customer)
    [invoice] = await stack.rows("SELECT number FROM invoices WHERE payment_id = $1", payment["paymentId"])
    document = pdf_of(receipt)
    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)
    assert invoice["number"] in pdf_text
    assert "1,499.00" in pdf_text
    assert payment["paymentId"] in text_of(receipt)
    assert invoice["number"] in str(receipt["Subject"]) + text_of(receipt)

    await eventually(
        lambda: mails_of(stack, "invoice_generated", "billing@commdesk.example"), timeout=30, what="the copy"
    )
    copies = [
        m for m in mails_of(stack, "invoice_generated", "billing@commdesk.example") if pdf_of(m) == document
    ]
    assert len(copies) == 1

    download = await stack.api.get(
        f"/api/v1/payments/{payment['paymentId']}/invoice", headers=stack.headers(user)
    )
    assert download.status == 200
    assert download.content_type == "application/pdf"
    assert await download.read() == document
    stranger = await stack.api.get(
        f"/api/v1/payments/{payment['paymentId']}/invoice", headers=stack.headers("someone-else")
    )
    assert stranger.status == 404
    [row] = await stack.rows("SELECT invoice_id FROM invoices WHERE payment_id = $1", payment["paymentId"])
    records = await stack.rows(
        "SELECT kind, status, e::text AS whole FROM emails e WHERE event_id LIKE $1 ORDER BY kind",
        f"evt_{row['invoice_id']}%",
    )
    assert [(r["kind"], r["status"]) for r in records] == [
        ("invoice_generated", "SENT"),
        ("payment_success", "SENT"),
    ]
    assert not any(customer in r["whole"] for r in records)  # the address is kept sealed


async def test_a_declined_attempt_and_a_refund_are_mailed_to_the_customer(stack):
    user, customer = f"user-mail-{uuid.uuid4().hex[:8]}", f"ravi-{uuid.uuid4().hex[:8]}@example.com"
    payment = await (await stack.create(user, amount="800.00", email=customer)).json()
    await stack.pay(payment["paymentSessionId"], "testfailure@gocash")
    await stack.verify(user, payment["paymentId"])

    await eventually(lambda: mails_of(stack, "payment_failed", customer), timeout=30, what="the failure mail")
    [failure] = mails_of(stack, "payment_failed", customer)
    assert f"https://app.commdesk.example/billing/payments/{payment['paymentId']}/pay" in text_of(failure)
    assert "support@commdesk.example" in text_of(failure)

    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")
    await stack.verify(user, payment["paymentId"])
    refund = await stack.refund(user, payment["paymentId"], "300.00")
    assert refund.status in {201, 202}, await refund.text()

    await eventually(lambda: mails_of(stack, "payment_refund", customer), timeout=30, what="the refund mail")
    first = mails_of(stack, "payment_refund", customer)[0]
    assert "300.00" in text_of(first)

"""GET a payment's invoice: the PDF for its owner or an admin, 404 for anyone else or before it exists."""

from __future__ import annotations

from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.domain.gateway import AttemptStatus
from payments.domain.invoice.document import Issuer
from payments.domain.invoice.model import Invoice
from payments.domain.invoice.service import issue_invoice
from tests.unit.web_payments._api import ADMIN, NOW, OWNER, STRANGER, create, verify

ISSUER = Issuer(
    name="CommDesk Technologies Pvt. Ltd.",
    address="Bengaluru, Karnataka, India",
    support_email="support@commdesk.example",
    support_phone="+91 80 4000 0000",
)


async def a_paid_payment(client, world) -> dict:
    response, created = await create(client, world, "order-1")
    assert response.status == 201
    world.gateway.attempt(created["orderId"], AttemptStatus.SUCCESS)
    response, verified = await verify(client, world, "v-1", {"paymentId": created["paymentId"]})
    assert (response.status, verified["status"]) == (200, "SUCCESS")
    return verified


async def invoiced(world, payment_id: str) -> tuple[Invoice, bytes]:
    async with world.store.unit_of_work() as uow:
        invoice = await issue_invoice(
            uow, payment_id, renderer=InvoicePdf(), prefix="INV", issuer=ISSUER, now=NOW
        )
    assert invoice is not None
    async with world.store.unit_of_work() as uow:
        return invoice, await uow.invoices.document(invoice.invoice_id)


def invoice_url(payment_id: str) -> str:
    return f"/api/v1/payments/{payment_id}/invoice"


async def test_the_owner_downloads_the_invoice_as_a_private_pdf_attachment(client, world):
    payment = await a_paid_payment(client, world)
    invoice, pdf = await invoiced(world, payment["paymentId"])

    response = await client.get(invoice_url(payment["paymentId"]), headers=world.headers(OWNER))

    assert response.status == 200
    assert response.content_type == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="INV-2026-000001.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    assert await response.read() == pdf
    assert invoice.number == "INV-2026-000001"


async def test_an_admin_downloads_anyones_invoice(client, world):
    payment = await a_paid_payment(client, world)
    _, pdf = await invoiced(world, payment["paymentId"])

    response = await client.get(invoice_url(payment["paymentId"]), headers=world.headers(ADMIN, admin=True))

    assert response.status == 200
    assert await response.read() == pdf


async def test_another_users_invoice_does_not_exist_for_them(client, world):
    payment = await a_paid_payment(client, world)
    await invoiced(world, payment["paymentId"])

    response = await client.get(invoice_url(payment["paymentId"]), headers=world.headers(STRANGER))

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_a_payment_without_an_invoice_yet_is_404_invoice_not_found(client, world):
    response, created = await create(client, world, "order-1")
    assert response.status == 201

    response = await client.get(invoice_url(created["paymentId"]), headers=world.headers(OWNER))

    assert response.status == 404
    body = await response.json()
    assert body["error"]["code"] == "invoice_not_found"
    assert body["error"]["message"] == f"payment {created['paymentId']} has no invoice yet"


async def test_an_unknown_payment_is_404_not_found(client, world):
    response = await client.get(invoice_url("pay_doesnotexist"), headers=world.headers(OWNER))

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_the_invoice_needs_a_token(client, world):
    payment = await a_paid_payment(client, world)
    await invoiced(world, payment["paymentId"])

    response = await client.get(invoice_url(payment["paymentId"]))

    assert response.status == 401
    assert response.content_type == "application/json"

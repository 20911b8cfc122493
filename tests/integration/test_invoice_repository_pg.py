"""PgInvoiceRepository keeps the invoice contract with its PDFs in the row and in a directory."""

from __future__ import annotations

import hashlib
import os
from functools import partial

import asyncpg
import pytest

from payments.bridges.postgres.invoices import InvoiceDocumentDamaged, document_path
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.errors import Conflict, DependencyUnavailable
from tests.contracts_invoices import (
    INVOICE_CONTRACTS,
    YEAR,
    a_paid_payment,
    a_pdf,
    an_invoice,
    issued,
    rolled_back,
)

CIPHER = PiiCipher(os.urandom(32))


@pytest.mark.parametrize("contract", INVOICE_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_postgres_invoices_in_the_database_keep_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))


@pytest.mark.parametrize("contract", INVOICE_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_postgres_invoices_in_a_directory_keep_the_contract_that(contract, pg_pool, tmp_path):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path))


async def test_in_a_directory_the_pdf_is_a_file_named_by_year_and_number_and_the_row_keeps_none(
    pg_pool, tmp_path
):
    invoice, pdf = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path))

    path = tmp_path / str(invoice.year) / f"{invoice.number}.pdf"
    row = await pg_pool.fetchrow("SELECT pdf, sha256 FROM invoices WHERE invoice_id = $1", invoice.invoice_id)
    assert path.read_bytes() == pdf
    assert (row["pdf"], row["sha256"]) == (None, hashlib.sha256(pdf).hexdigest())
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


async def test_in_the_database_the_row_keeps_the_pdf_and_no_file_is_written(pg_pool, tmp_path):
    invoice, pdf = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))

    stored = await pg_pool.fetchval("SELECT pdf FROM invoices WHERE invoice_id = $1", invoice.invoice_id)
    assert stored == pdf
    assert list(tmp_path.iterdir()) == []


async def test_a_file_that_no_longer_matches_its_hash_is_refused(pg_pool, tmp_path):
    uow_factory = partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path)
    invoice, pdf = await issued(uow_factory)
    document_path(tmp_path, invoice.year, invoice.number).write_bytes(pdf.replace(b"invoice", b"invoicE"))

    async with uow_factory() as uow:
        with pytest.raises(InvoiceDocumentDamaged, match="does not match"):
            await uow.invoices.document(invoice.invoice_id)


async def test_a_missing_file_is_reported_as_damage_not_as_not_found(pg_pool, tmp_path):
    uow_factory = partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path)
    invoice, _ = await issued(uow_factory)
    document_path(tmp_path, invoice.year, invoice.number).unlink()

    async with uow_factory() as uow:
        with pytest.raises(InvoiceDocumentDamaged, match="missing"):
            await uow.invoices.document(invoice.invoice_id)


async def test_an_invoice_kept_in_a_directory_needs_the_directory_to_be_read(pg_pool, tmp_path):
    invoice, _ = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path))

    async with pg_unit_of_work(pg_pool, cipher=CIPHER) as uow:
        with pytest.raises(InvoiceDocumentDamaged, match="none is configured"):
            await uow.invoices.document(invoice.invoice_id)


async def test_an_invoice_kept_in_the_row_is_still_read_once_a_directory_is_configured(pg_pool, tmp_path):
    invoice, pdf = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))

    async with pg_unit_of_work(pg_pool, cipher=CIPHER, invoice_directory=tmp_path) as uow:
        assert await uow.invoices.document(invoice.invoice_id) == pdf


async def test_a_conflicting_invoice_writes_no_file(pg_pool, tmp_path):
    uow_factory = partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path)
    invoice, pdf = await issued(uow_factory)
    other = await a_paid_payment(uow_factory)
    clash_pdf = a_pdf("clash")
    before = sorted(tmp_path.rglob("*"))

    with pytest.raises(Conflict):
        async with uow_factory() as uow:
            await uow.invoices.add(an_invoice(other, invoice.sequence, clash_pdf), clash_pdf)

    assert sorted(tmp_path.rglob("*")) == before
    assert document_path(tmp_path, invoice.year, invoice.number).read_bytes() == pdf


async def test_a_file_left_by_a_rolled_back_issue_is_replaced_by_the_invoice_that_takes_its_number(
    pg_pool, tmp_path
):
    uow_factory = partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=tmp_path)
    abandoned = await a_paid_payment(uow_factory)
    lost_pdf = a_pdf("rolled back")

    async def add(uow):
        invoice = an_invoice(abandoned, await uow.invoices.next_sequence(YEAR), lost_pdf)
        await uow.invoices.add(invoice, lost_pdf)
        return invoice

    lost = await rolled_back(uow_factory, add)
    path = document_path(tmp_path, YEAR, lost.number)
    assert path.read_bytes() == lost_pdf  # the harmless leftover: no row points at it

    invoice, pdf = await issued(uow_factory)

    assert invoice.number == lost.number
    assert path.read_bytes() == pdf
    async with uow_factory() as uow:
        assert await uow.invoices.document(invoice.invoice_id) == pdf
        assert await uow.invoices.for_payment(abandoned.payment_id) is None


async def test_an_issued_invoice_can_be_neither_changed_nor_removed(pg_pool):
    invoice, _ = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))

    with pytest.raises(asyncpg.RaiseError, match="UPDATE is not allowed"):
        await pg_pool.execute("UPDATE invoices SET amount = 1 WHERE invoice_id = $1", invoice.invoice_id)
    with pytest.raises(asyncpg.RaiseError, match="DELETE is not allowed"):
        await pg_pool.execute("DELETE FROM invoices WHERE invoice_id = $1", invoice.invoice_id)


async def test_the_table_refuses_a_number_that_does_not_spell_its_year_and_sequence(pg_pool):
    invoice, pdf = await issued(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))
    other = await a_paid_payment(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))

    with pytest.raises(asyncpg.CheckViolationError, match="invoices_number_format"):
        await pg_pool.execute(
            "INSERT INTO invoices (invoice_id, number, year, sequence, payment_id, user_id, amount, currency,"
            " issued_at, sha256, pdf) VALUES ('inv_bad', 'INV-2026-000001', $1, $2, $3, 'u', 1, 'INR', now(),"
            " $4, NULL)",
            YEAR,
            invoice.sequence + 10_000,
            other.payment_id,
            hashlib.sha256(pdf).hexdigest(),
        )


async def test_a_directory_that_cannot_be_written_is_a_retryable_failure_and_stores_nothing(
    pg_pool, tmp_path
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"a file where the directory should be")
    uow_factory = partial(pg_unit_of_work, pg_pool, cipher=CIPHER, invoice_directory=blocked)
    payment = await a_paid_payment(uow_factory)
    pdf = a_pdf()

    async def issue() -> None:
        async with uow_factory() as uow:
            await uow.invoices.add(an_invoice(payment, await uow.invoices.next_sequence(YEAR), pdf), pdf)

    with pytest.raises(DependencyUnavailable, match="invoice directory unavailable during write"):
        await issue()

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(payment.payment_id) is None

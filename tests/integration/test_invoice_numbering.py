"""Invoice numbers on real PostgreSQL: gap-free and unique per year under concurrent successes.

Each test numbers in a year of its own and reads the year's counter first, so it holds whatever else
ran against the database before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import asyncpg
import pytest

from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import open_pool
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.invoice.document import Issuer
from payments.domain.invoice.model import Invoice
from payments.domain.invoice.service import issue_invoice
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState
from tests.contracts_payments import new_payment

CIPHER = PiiCipher(os.urandom(32))
ISSUER = Issuer(
    name="CommDesk Technologies Pvt. Ltd.",
    address="Bengaluru, Karnataka, India",
    support_email="support@commdesk.example",
    support_phone="+91 80 4000 0000",
)
RENDERER = InvoicePdf()
LAST_SEQUENCE = "SELECT last_sequence FROM invoice_sequences WHERE year = $1"


class Boom(Exception):
    pass


def mid(year: int) -> datetime:
    return datetime(year, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pool(migrated_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """Connections enough for issuers to really run side by side (and wait on the year's counter)."""
    async with open_pool(migrated_dsn, min_size=1, max_size=24, command_timeout=60.0) as pool:
        yield pool


def uow_factory(pool: asyncpg.Pool):
    return partial(pg_unit_of_work, pool, cipher=CIPHER, acquire_timeout=60.0)


async def paid_payments(pool: asyncpg.Pool, count: int) -> list[Payment]:
    payments = [new_payment(status=PaymentState.SUCCESS) for _ in range(count)]
    async with uow_factory(pool)() as uow:
        for payment in payments:
            assert await uow.payments.add(payment)
    return payments


async def issue(pool: asyncpg.Pool, payment_id: str, *, year: int, fail: bool = False) -> Invoice | None:
    async with uow_factory(pool)() as uow:
        invoice = await issue_invoice(
            uow, payment_id, renderer=RENDERER, prefix="INV", issuer=ISSUER, now=mid(year)
        )
        if fail:
            raise Boom  # after the number was taken and the invoice added: all of it rolls back
    return invoice


async def last_sequence(pool: asyncpg.Pool, year: int) -> int:
    return await pool.fetchval(LAST_SEQUENCE, year) or 0


async def invoices_of(pool: asyncpg.Pool, year: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT number, sequence, payment_id, sha256, pdf FROM invoices WHERE year = $1 ORDER BY sequence",
        year,
    )


async def test_a_hundred_concurrent_successes_get_the_next_hundred_numbers_without_a_gap(pool):
    year = 2031
    payments = await paid_payments(pool, 100)
    before = await last_sequence(pool, year)

    issued = await asyncio.gather(*(issue(pool, p.payment_id, year=year) for p in payments))

    expected = list(range(before + 1, before + 101))
    assert sorted(i.sequence for i in issued) == expected
    assert len({i.number for i in issued}) == 100
    assert {i.payment_id for i in issued} == {p.payment_id for p in payments}
    rows = await invoices_of(pool, year)
    assert [row["sequence"] for row in rows] == expected
    assert [row["number"] for row in rows] == [f"INV-{year}-{n:06d}" for n in expected]
    assert all(hashlib.sha256(row["pdf"]).hexdigest() == row["sha256"] for row in rows)
    assert await last_sequence(pool, year) == before + 100
    emails = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'invoiceId' = ANY($1::text[])",
        [i.invoice_id for i in issued],
    )
    assert emails == 200  # the success email and the billing copy, once per invoice


async def test_concurrent_issues_for_one_payment_make_one_invoice_and_take_one_number(pool):
    year = 2032
    [payment] = await paid_payments(pool, 1)
    before = await last_sequence(pool, year)

    issued = await asyncio.gather(*(issue(pool, payment.payment_id, year=year) for _ in range(10)))

    assert len(set(issued)) == 1
    assert issued[0].sequence == before + 1
    assert await last_sequence(pool, year) == before + 1
    rows = await pool.fetch("SELECT number FROM invoices WHERE payment_id = $1", payment.payment_id)
    assert [row["number"] for row in rows] == [issued[0].number]
    events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'paymentId' = $1 AND routing_key LIKE 'email.%'",
        payment.payment_id,
    )
    assert events == 2


async def test_a_rolled_back_issue_leaves_no_gap_for_the_next_one(pool):
    year = 2033
    lost, kept = await paid_payments(pool, 2)
    before = await last_sequence(pool, year)

    with pytest.raises(Boom):
        await issue(pool, lost.payment_id, year=year, fail=True)
    invoice = await issue(pool, kept.payment_id, year=year)

    assert invoice is not None
    assert invoice.sequence == before + 1
    assert await pool.fetchval("SELECT count(*) FROM invoices WHERE payment_id = $1", lost.payment_id) == 0
    outbox = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->>'paymentId' = $1", lost.payment_id
    )
    assert outbox == 0


async def test_issues_that_fail_among_concurrent_ones_leave_the_committed_numbers_gap_free(pool):
    year = 2034
    payments = await paid_payments(pool, 40)
    failing = {p.payment_id for p in payments[::4]}
    before = await last_sequence(pool, year)

    outcomes = await asyncio.gather(
        *(issue(pool, p.payment_id, year=year, fail=p.payment_id in failing) for p in payments),
        return_exceptions=True,
    )

    assert sum(isinstance(o, Boom) for o in outcomes) == len(failing) == 10
    rows = await invoices_of(pool, year)
    assert [row["sequence"] for row in rows] == list(range(before + 1, before + 31))
    assert not failing & {row["payment_id"] for row in rows}
    assert await last_sequence(pool, year) == before + 30

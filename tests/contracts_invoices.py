"""The invoice repository contract, run against the in-memory fake and against PostgreSQL.

Each contract takes a factory of units of work (with the personal-data cipher, since invoices point at
payments) and uses fresh payments. Numbering years are shared by everything that runs against one
database, so the contracts compare numbers with each other, never with 1.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from payments.domain.errors import Conflict, NotFound
from payments.domain.invoice.model import Invoice, invoice_id_for, invoice_number
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState
from payments.domain.unit_of_work import UnitOfWork
from tests.contracts_payments import new_payment

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: The year these contracts number in; other years are used where a contract needs two.
YEAR = 2026


T = TypeVar("T")


class Boom(Exception):
    """Raised inside a unit of work to roll it back."""


async def rolled_back(uow_factory: UnitOfWorkFactory, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """What ``work`` returned in a unit of work that then rolled back."""
    results: list[T] = []

    async def run() -> None:
        async with uow_factory() as uow:
            results.append(await work(uow))
            raise Boom

    with pytest.raises(Boom):
        await run()
    return results[0]


def a_pdf(label: str = "") -> bytes:
    return f"%PDF-1.3 invoice {label} {uuid.uuid4().hex}\n%%EOF\n".encode()


def an_invoice(payment: Payment, sequence: int, pdf: bytes, *, year: int = YEAR) -> Invoice:
    return Invoice(
        invoice_id=invoice_id_for(payment.payment_id),
        number=invoice_number("INV", year, sequence),
        year=year,
        sequence=sequence,
        payment_id=payment.payment_id,
        user_id=payment.user_id,
        amount=payment.amount,
        issued_at=NOW,
        sha256=hashlib.sha256(pdf).hexdigest(),
    )


async def a_paid_payment(uow_factory: UnitOfWorkFactory) -> Payment:
    payment = new_payment(status=PaymentState.SUCCESS)
    async with uow_factory() as uow:
        assert await uow.payments.add(payment) is True
    return payment


async def issued(uow_factory: UnitOfWorkFactory, *, year: int = YEAR) -> tuple[Invoice, bytes]:
    """A fresh paid payment's invoice, stored and committed."""
    payment = await a_paid_payment(uow_factory)
    pdf = a_pdf(payment.payment_id)
    async with uow_factory() as uow:
        invoice = an_invoice(payment, await uow.invoices.next_sequence(year), pdf, year=year)
        await uow.invoices.add(invoice, pdf)
    return invoice, pdf


async def taken(uow_factory: UnitOfWorkFactory, year: int = YEAR) -> int:
    """A number taken and kept (committed), as an issue that then failed to add would not do."""
    async with uow_factory() as uow:
        return await uow.invoices.next_sequence(year)


async def each_number_of_a_year_follows_the_last_and_years_count_apart(
    uow_factory: UnitOfWorkFactory,
) -> None:
    first = await taken(uow_factory, YEAR)
    other = await taken(uow_factory, YEAR + 1)
    second = await taken(uow_factory, YEAR)
    other_again = await taken(uow_factory, YEAR + 1)

    assert first >= 1
    assert second == first + 1
    assert other_again == other + 1


async def a_rolled_back_transaction_gives_its_number_back(uow_factory: UnitOfWorkFactory) -> None:
    lost = await rolled_back(uow_factory, lambda uow: uow.invoices.next_sequence(YEAR))

    assert await taken(uow_factory) == lost


async def a_number_taken_while_another_holds_the_year_follows_that_ones_outcome(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async def take_when_told(started: asyncio.Event) -> int:
        async with uow_factory() as uow:
            started.set()
            return await uow.invoices.next_sequence(YEAR)

    started = asyncio.Event()
    tasks: list[asyncio.Task[int]] = []

    async def take_then_let_another_wait(uow: UnitOfWork) -> int:
        sequence = await uow.invoices.next_sequence(YEAR)
        tasks.append(asyncio.create_task(take_when_told(started)))
        await started.wait()
        return sequence

    given_back = await rolled_back(uow_factory, take_then_let_another_wait)
    after_rollback = await tasks[0]

    started = asyncio.Event()
    async with uow_factory() as uow:
        kept = await uow.invoices.next_sequence(YEAR)
        waiting = asyncio.create_task(take_when_told(started))
        await started.wait()
    after_commit = await waiting

    assert after_rollback == given_back
    assert (kept, after_commit) == (given_back + 1, given_back + 2)


async def an_invoice_round_trips_with_its_pdf(uow_factory: UnitOfWorkFactory) -> None:
    invoice, pdf = await issued(uow_factory)

    async with uow_factory() as uow:
        found = await uow.invoices.for_payment(invoice.payment_id)
        document = await uow.invoices.document(invoice.invoice_id)

    assert found == invoice
    assert document == pdf


async def a_payment_gets_only_one_invoice(uow_factory: UnitOfWorkFactory) -> None:
    invoice, _ = await issued(uow_factory)
    payment = new_payment(payment_id=invoice.payment_id)  # same id: stands for the same payment
    pdf = a_pdf("again")

    async def issue_again() -> None:
        async with uow_factory() as uow:
            sequence = await uow.invoices.next_sequence(YEAR)
            again = replace(an_invoice(payment, sequence, pdf), invoice_id=f"inv_{uuid.uuid4().hex[:12]}")
            await uow.invoices.add(again, pdf)

    with pytest.raises(Conflict):
        await issue_again()

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(invoice.payment_id) == invoice


async def a_number_is_issued_once(uow_factory: UnitOfWorkFactory) -> None:
    invoice, _ = await issued(uow_factory)
    other = await a_paid_payment(uow_factory)
    pdf = a_pdf("same number")

    with pytest.raises(Conflict):
        async with uow_factory() as uow:
            await uow.invoices.add(an_invoice(other, invoice.sequence, pdf), pdf)

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(other.payment_id) is None


async def a_pdf_is_stored_only_with_its_own_hash(uow_factory: UnitOfWorkFactory) -> None:
    payment = await a_paid_payment(uow_factory)
    pdf = a_pdf()

    async def add_with_another_pdf() -> None:
        async with uow_factory() as uow:
            invoice = an_invoice(payment, await uow.invoices.next_sequence(YEAR), pdf)
            await uow.invoices.add(invoice, pdf + b"tampered")

    with pytest.raises(ValueError, match="sha256"):
        await add_with_another_pdf()

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(payment.payment_id) is None


async def an_invoice_is_invisible_to_others_until_it_commits(uow_factory: UnitOfWorkFactory) -> None:
    payment = await a_paid_payment(uow_factory)
    pdf = a_pdf()

    async with uow_factory() as uow:
        invoice = an_invoice(payment, await uow.invoices.next_sequence(YEAR), pdf)
        await uow.invoices.add(invoice, pdf)
        async with uow_factory() as other:
            seen_before_commit = await other.invoices.for_payment(payment.payment_id)
            with pytest.raises(NotFound):
                await other.invoices.document(invoice.invoice_id)
        assert await uow.invoices.for_payment(payment.payment_id) == invoice

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(payment.payment_id) == invoice
    assert seen_before_commit is None


async def a_rolled_back_invoice_leaves_nothing(uow_factory: UnitOfWorkFactory) -> None:
    payment = await a_paid_payment(uow_factory)
    pdf = a_pdf()

    async def add(uow: UnitOfWork) -> Invoice:
        invoice = an_invoice(payment, await uow.invoices.next_sequence(YEAR), pdf)
        await uow.invoices.add(invoice, pdf)
        return invoice

    invoice = await rolled_back(uow_factory, add)

    async with uow_factory() as uow:
        assert await uow.invoices.for_payment(payment.payment_id) is None
        with pytest.raises(NotFound):
            await uow.invoices.document(invoice.invoice_id)
    assert await taken(uow_factory) == invoice.sequence


async def unknown_invoices_are_not_found(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert await uow.invoices.for_payment("pay_unknown") is None
        with pytest.raises(NotFound):
            await uow.invoices.document("inv_unknown")


INVOICE_CONTRACTS = [
    each_number_of_a_year_follows_the_last_and_years_count_apart,
    a_rolled_back_transaction_gives_its_number_back,
    a_number_taken_while_another_holds_the_year_follows_that_ones_outcome,
    an_invoice_round_trips_with_its_pdf,
    a_payment_gets_only_one_invoice,
    a_number_is_issued_once,
    a_pdf_is_stored_only_with_its_own_hash,
    an_invoice_is_invisible_to_others_until_it_commits,
    a_rolled_back_invoice_leaves_nothing,
    unknown_invoices_are_not_found,
]

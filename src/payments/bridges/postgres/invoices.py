"""Invoices in PostgreSQL (``InvoiceRepository``), their PDFs in the row or in a directory.

Numbers come from ``invoice_sequences`` (migration 0011): one counter row per year, bumped inside the
issuing transaction and locked until it ends, so numbers are gap-free and a rollback gives one back.

Directory mode (``directory`` set) keeps each PDF as ``<directory>/<year>/<number>.pdf`` and leaves
the row's ``pdf`` NULL. The file is written, atomically (a temporary file, fsync, rename, fsync of the
directory), after the row is inserted and before the transaction commits:

- A file without a row is harmless. It is left by a transaction that failed after writing (a failed
  commit, a crash); its number went back to the counter, nothing points at the file, and the next
  invoice that takes the number replaces it with its own.
- A row without its file cannot happen: the row becomes visible only at commit, and the file is
  durably in place before that. The rename is atomic, so a reader never sees half a file, and every
  read checks the file against the row's SHA-256 all the same.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import asyncpg

from payments.bridges.postgres.pool import Connection
from payments.domain.errors import Conflict, DependencyUnavailable, NotFound
from payments.domain.invoice.model import Invoice
from payments.domain.money import Money

T = TypeVar("T")

#: Take the year's next number: the first of a year is 1. The counter row stays locked until the
#: transaction ends (a concurrent issuer waits here), and a rollback undoes the bump.
NEXT_SEQUENCE: Final = """
INSERT INTO invoice_sequences AS counter (year, last_sequence)
VALUES ($1, 1)
ON CONFLICT (year) DO UPDATE SET last_sequence = counter.last_sequence + 1
RETURNING last_sequence
"""

#: Record an issued invoice; no row comes back if the payment (or number) already has one. ON CONFLICT
#: rather than catching the unique violation, so the caller's transaction stays usable.
INSERT_INVOICE: Final = """
INSERT INTO invoices (
    invoice_id, number, year, sequence, payment_id, user_id, amount, currency, issued_at, sha256, pdf
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
RETURNING invoice_id
"""

#: A payment's invoice, without its document.
SELECT_FOR_PAYMENT: Final = """
SELECT invoice_id, number, year, sequence, payment_id, user_id, amount, currency, issued_at, sha256
FROM invoices
WHERE payment_id = $1
"""

#: Where an invoice's document is, and what it must hash to.
SELECT_DOCUMENT: Final = "SELECT year, number, sha256, pdf FROM invoices WHERE invoice_id = $1"

#: Files are written owner read-write, group read: invoices carry customers' names.
FILE_MODE: Final = 0o640


class InvoiceDocumentDamaged(RuntimeError):
    """A stored invoice PDF is missing or does not match its recorded SHA-256 (an operator must look)."""


class PgInvoiceRepository:
    def __init__(self, connection: Connection, *, directory: Path | None) -> None:
        self._connection = connection
        self._directory = directory

    async def next_sequence(self, year: int) -> int:
        sequence: int = await self._connection.fetchval(NEXT_SEQUENCE, year)
        return sequence

    async def add(self, invoice: Invoice, pdf: bytes) -> None:
        if hashlib.sha256(pdf).hexdigest() != invoice.sha256:
            raise ValueError(f"invoice {invoice.number}: sha256 is not the hash of its PDF")
        inserted = await self._connection.fetchval(
            INSERT_INVOICE,
            invoice.invoice_id,
            invoice.number,
            invoice.year,
            invoice.sequence,
            invoice.payment_id,
            invoice.user_id,
            invoice.amount.amount,
            invoice.amount.currency,
            invoice.issued_at,
            invoice.sha256,
            None if self._directory is not None else pdf,
        )
        if inserted is None:
            raise Conflict(
                f"payment {invoice.payment_id} already has an invoice (or {invoice.number} is taken)"
            )
        if self._directory is not None:
            # Only after the insert succeeded: a conflict writes nothing, and the number is ours.
            path = document_path(self._directory, invoice.year, invoice.number)
            try:
                await _to_completion(lambda: write_atomically(path, pdf))
            except OSError as error:
                # Not an OSError: the unit of work would take that for a lost database connection.
                raise _directory_unavailable("write", error) from error

    async def for_payment(self, payment_id: str) -> Invoice | None:
        row = await self._connection.fetchrow(SELECT_FOR_PAYMENT, payment_id)
        return None if row is None else _invoice(row)

    async def document(self, invoice_id: str) -> bytes:
        row = await self._connection.fetchrow(SELECT_DOCUMENT, invoice_id)
        if row is None:
            raise NotFound(f"invoice {invoice_id} not found")
        pdf: bytes | None = row["pdf"]
        if pdf is None:
            pdf = await self._read_file(row["year"], row["number"])
        if hashlib.sha256(pdf).hexdigest() != row["sha256"]:
            raise InvoiceDocumentDamaged(f"invoice {row['number']}: the PDF does not match its SHA-256")
        return pdf

    async def _read_file(self, year: int, number: str) -> bytes:
        if self._directory is None:
            raise InvoiceDocumentDamaged(f"invoice {number} is kept in a directory, and none is configured")
        path = document_path(self._directory, year, number)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise InvoiceDocumentDamaged(f"invoice {number}: {path} is missing") from None
        except OSError as error:
            raise _directory_unavailable("read", error) from error


def document_path(directory: Path, year: int, number: str) -> Path:
    """Where directory mode keeps an invoice's PDF."""
    return directory / str(year) / f"{number}.pdf"


def write_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` all at once, durably: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename lives in the directory: sync it too, or a crash could forget it after our commit.
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


async def _to_completion(work: Callable[[], T]) -> T:
    """Run blocking ``work`` in a thread and return only once it has finished, even when cancelled.

    A thread cannot be stopped. If a cancelled issue returned while its thread still wrote, the
    rollback would free the number, and a late rename could replace the file of the invoice that takes
    the number next. So a cancellation waits for the thread, then goes on.
    """
    future = asyncio.get_running_loop().run_in_executor(None, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue  # cancelled again: still wait for the thread
        if not future.cancelled():
            future.exception()  # retrieved: the cancellation is what the caller hears about
        raise


def _directory_unavailable(step: str, error: OSError) -> DependencyUnavailable:
    # The errno's name (ENOSPC, EACCES) says what happened; paths stay in the log of the cause.
    reason = errno.errorcode.get(error.errno or 0, type(error).__name__)
    return DependencyUnavailable(f"invoice directory unavailable during {step}: {reason}")


def _invoice(row: asyncpg.Record) -> Invoice:
    return Invoice(
        invoice_id=row["invoice_id"],
        number=row["number"],
        year=row["year"],
        sequence=row["sequence"],
        payment_id=row["payment_id"],
        user_id=row["user_id"],
        amount=Money(row["amount"], row["currency"]),
        issued_at=row["issued_at"],
        sha256=row["sha256"],
    )

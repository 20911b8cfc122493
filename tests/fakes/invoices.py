"""An in-memory ``InvoiceRepository`` with the PostgreSQL repository's rules.

Like ``invoice_sequences``: a year's counter is locked from ``next_sequence`` until the unit of work
ends, and its bump reaches the store only on commit, so a rollback gives the number back. Like the
``invoices`` table: one invoice per payment, per number and per (year, sequence); the hash must be the
PDF's; writes are visible to other units of work only after commit.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from payments.domain.errors import Conflict, NotFound
from payments.domain.invoice.model import Invoice


@dataclass
class InvoiceTables:
    """The committed invoices (with their PDFs) and year counters every unit of work shares."""

    invoices: dict[str, tuple[Invoice, bytes]] = field(default_factory=dict)
    #: year -> last number handed out
    sequences: dict[int, int] = field(default_factory=dict)
    #: Stands in for the counter rows' locks.
    year_locks: dict[int, asyncio.Lock] = field(default_factory=dict)


class InMemoryInvoiceRepository:
    def __init__(self, tables: InvoiceTables) -> None:
        self._tables = tables
        self._invoices: dict[str, tuple[Invoice, bytes]] = {}
        self._sequences: dict[int, int] = {}
        self._held: list[asyncio.Lock] = []

    async def next_sequence(self, year: int) -> int:
        lock = self._tables.year_locks.setdefault(year, asyncio.Lock())
        if lock not in self._held:
            await lock.acquire()
            self._held.append(lock)
        sequence = self._sequences.get(year, self._tables.sequences.get(year, 0)) + 1
        self._sequences[year] = sequence
        return sequence

    async def add(self, invoice: Invoice, pdf: bytes) -> None:
        if hashlib.sha256(pdf).hexdigest() != invoice.sha256:
            raise ValueError(f"invoice {invoice.number}: sha256 is not the hash of its PDF")
        for known, _ in self._visible().values():
            if (
                known.invoice_id == invoice.invoice_id
                or known.payment_id == invoice.payment_id
                or known.number == invoice.number
                or (known.year, known.sequence) == (invoice.year, invoice.sequence)
            ):
                raise Conflict(
                    f"payment {invoice.payment_id} already has an invoice (or {invoice.number} is taken)"
                )
        self._invoices[invoice.invoice_id] = (invoice, bytes(pdf))

    async def for_payment(self, payment_id: str) -> Invoice | None:
        for invoice, _ in self._visible().values():
            if invoice.payment_id == payment_id:
                return invoice
        return None

    async def document(self, invoice_id: str) -> bytes:
        stored = self._visible().get(invoice_id)
        if stored is None:
            raise NotFound(f"invoice {invoice_id} not found")
        return stored[1]

    def _visible(self) -> dict[str, tuple[Invoice, bytes]]:
        return {**self._tables.invoices, **self._invoices}

    def commit(self) -> None:
        self._tables.invoices.update(self._invoices)
        self._tables.sequences.update(self._sequences)

    def release(self) -> None:
        for lock in self._held:
            lock.release()
        self._held.clear()

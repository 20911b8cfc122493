"""An invoice: the document a successful payment earns its customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from payments.domain.money import Money

#: Invoice numbers read ``INV-2026-000042``: the prefix, the year, then the year's sequence.
NUMBER_DIGITS: Final = 6


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:0{NUMBER_DIGITS}d}"


@dataclass(frozen=True, kw_only=True)
class Invoice:
    invoice_id: str
    #: Gap-free per year: every number from 1 up to the latest was issued, each once.
    number: str
    year: int
    sequence: int
    payment_id: str
    user_id: str
    amount: Money
    issued_at: datetime
    #: The rendered PDF's SHA-256 (hex): the stored document can be checked against it.
    sha256: str


class InvoiceRepository(Protocol):
    """The ``invoices`` table and its per-year number sequence (``invoice_sequences``)."""

    async def next_sequence(self, year: int) -> int:
        """The next number of ``year``, taken inside the caller's transaction.

        The year's counter stays locked until that transaction ends, and a rollback gives the number
        back: numbers are gap-free as long as every taken number is used by ``add`` in the same
        transaction.
        """
        ...

    async def add(self, invoice: Invoice, pdf: bytes) -> None:
        """Store an issued invoice and its PDF; ``Conflict`` if its payment already has one."""
        ...

    async def for_payment(self, payment_id: str) -> Invoice | None: ...

    async def document(self, invoice_id: str) -> bytes:
        """The PDF of an issued invoice; raises ``NotFound``."""
        ...

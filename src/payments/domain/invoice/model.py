"""An invoice: the document a successful payment earns its customer."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Final, Protocol

from payments.domain.errors import NotFound
from payments.domain.money import Money

#: Invoice numbers read ``INV-2026-000042``: the prefix, the year, then the year's sequence.
NUMBER_DIGITS: Final = 6

#: The issuer's time zone (India has no daylight saving). The invoice year and every date printed on
#: an invoice are read in it, so an invoice dated 1 January never carries the previous year's number.
ISSUER_TIMEZONE: Final = timezone(timedelta(hours=5, minutes=30), "IST")


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:0{NUMBER_DIGITS}d}"


def invoice_year(issued_at: datetime) -> int:
    """The numbering year of an invoice issued at ``issued_at`` (its calendar year in the issuer's zone)."""
    return issued_at.astimezone(ISSUER_TIMEZONE).year


def invoice_id_for(payment_id: str) -> str:
    """``inv_`` and 26 base32 characters, fixed per payment: a retried issue can only make this one."""
    digest = hashlib.sha256(f"invoice\x1f{payment_id}".encode()).digest()
    return "inv_" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:26]


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


class InvoiceNotFound(NotFound):
    """No invoice has been issued for this payment yet."""

    code = "invoice_not_found"


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
        """Store an issued invoice and its PDF; ``Conflict`` if its payment already has one.

        ``ValueError`` if ``invoice.sha256`` is not the SHA-256 of ``pdf``.
        """
        ...

    async def for_payment(self, payment_id: str) -> Invoice | None: ...

    async def document(self, invoice_id: str) -> bytes:
        """The PDF of an issued invoice; raises ``NotFound``."""
        ...

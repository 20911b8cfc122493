from __future__ import annotations

from typing import Protocol

from payments.domain.audit.model import AuditEntry, ChainVerification


class AuditLog(Protocol):
    """Append-only, hash-chained audit log."""

    async def append(self, entry: AuditEntry) -> None:
        """Append an entry in the current transaction, linked to the previous entry's hash."""
        ...

    async def verify_chain(self) -> ChainVerification:
        """Re-compute every hash in order and report the first row that does not match."""
        ...

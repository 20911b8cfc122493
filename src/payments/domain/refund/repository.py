"""How the refund service reads and writes refunds (``PgRefundRepository`` is the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from payments.domain.refund.model import Refund
from payments.domain.refund.states import RefundTrigger


class RefundRepository(Protocol):
    async def add(self, refund: Refund) -> bool:
        """Insert a new refund; False (and nothing written) if its refund id already exists."""
        ...

    async def get(self, refund_id: str) -> Refund:
        """The refund, or ``NotFound``."""
        ...

    async def for_payment(self, payment_id: str) -> Sequence[Refund]:
        """Every refund of a payment, oldest first."""
        ...

    async def save(self, before: Refund, after: Refund, trigger: RefundTrigger | None) -> None:
        """Write ``after`` if the row still is ``before`` (same version, a state ``trigger`` may leave);
        zero rows changed raises ``ConcurrentTransition``. ``trigger`` None: fields only, same state."""
        ...

    async def unsettled(self, *, updated_before: datetime, limit: int) -> Sequence[Refund]:
        """INITIATED or PROCESSING refunds untouched since ``updated_before``, oldest first (the poll)."""
        ...

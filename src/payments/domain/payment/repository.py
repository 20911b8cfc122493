"""How the payment service reads and writes payments (``PgPaymentRepository`` is the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from payments.domain.gateway import GatewayAttempt
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState, PaymentTrigger


@dataclass(frozen=True, kw_only=True)
class HistoryQuery:
    """One page of a user's payments (or everyone's, for an admin), newest first."""

    user_id: str | None
    status: PaymentState | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    #: (created_at, payment_id) of the last row of the previous page.
    after: tuple[datetime, str] | None = None
    limit: int = 20


class PaymentRepository(Protocol):
    async def add(self, payment: Payment) -> bool:
        """Insert a new payment; False (and nothing written) if its payment id already exists."""
        ...

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment:
        """The payment, or ``NotFound``; ``for_update`` locks its row until the transaction ends."""
        ...

    async def get_by_order_id(self, order_id: str) -> Payment: ...

    async def save(self, before: Payment, after: Payment, trigger: PaymentTrigger | None) -> None:
        """Write ``after`` if the row still is ``before`` (same version, a state ``trigger`` may leave).

        Zero rows changed means someone else got there first: ``ConcurrentTransition``.
        """
        ...

    async def record_attempt(self, payment_id: str, attempt: GatewayAttempt, *, now: datetime) -> bool:
        """Upsert the attempt's transaction row; True if it is new or its status changed."""
        ...

    async def attempts(self, payment_id: str) -> Sequence[GatewayAttempt]: ...

    async def history(self, query: HistoryQuery) -> Sequence[Payment]: ...

    async def due_for_expiry(self, *, now: datetime, limit: int) -> Sequence[Payment]:
        """Unpaid payments whose gateway order expired before ``now``, oldest first."""
        ...

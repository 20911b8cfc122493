"""Serialising gateway calls per payment (DESIGN §5.4): a lock in Redis, the SQL guard behind it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class PaymentLocks(Protocol):
    def hold(self, payment_id: str) -> AbstractAsyncContextManager[None]:
        """Hold ``lock:payment:{payment_id}`` for the block.

        Raises ``DependencyUnavailable`` if it cannot be had in time. The lock expires on its own, so a
        crashed holder cannot block a payment for ever; if it expires while held, the guarded SQL
        update is what still keeps the payment right.
        """
        ...

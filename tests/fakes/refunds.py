"""An in-memory ``RefundRepository`` with the PostgreSQL repository's rules.

Writes are staged and reach the tables only when the unit of work commits. Like the SQL: a refund id
is inserted once (a second ``add`` is False), a payment's idempotency keys are unique (another refund
id with the same key raises ``Conflict``; no key at all never clashes, as NULLs do not), and ``save``
succeeds only if the stored row still has the version read and a state the trigger may leave. Unlike
the table, it does not check that the payment exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from payments.domain.errors import ConcurrentTransition, Conflict, NotFound
from payments.domain.refund.model import Refund
from payments.domain.refund.states import RefundState, RefundTrigger, sources_of

_UNSETTLED = {RefundState.INITIATED, RefundState.PROCESSING}


@dataclass
class RefundTables:
    """The committed refunds every unit of work shares."""

    refunds: dict[str, Refund] = field(default_factory=dict)


class InMemoryRefundRepository:
    def __init__(self, tables: RefundTables) -> None:
        self._tables = tables
        self._staged: dict[str, Refund] = {}

    async def add(self, refund: Refund) -> bool:
        visible = self._visible()
        if refund.refund_id in visible:
            return False
        if refund.idempotency_key is not None and any(
            r.payment_id == refund.payment_id and r.idempotency_key == refund.idempotency_key
            for r in visible.values()
        ):
            raise Conflict(
                f"payment {refund.payment_id} already has a refund with idempotency key "
                f"{refund.idempotency_key}"
            )
        self._staged[refund.refund_id] = refund
        return True

    async def get(self, refund_id: str) -> Refund:
        refund = self._visible().get(refund_id)
        if refund is None:
            raise NotFound(f"refund {refund_id} not found")
        return refund

    async def for_payment(self, payment_id: str) -> Sequence[Refund]:
        mine = [r for r in self._visible().values() if r.payment_id == payment_id]
        return sorted(mine, key=lambda r: (r.created_at, r.refund_id))

    async def save(self, before: Refund, after: Refund, trigger: RefundTrigger | None) -> None:
        current = self._visible().get(before.refund_id)
        allowed = sources_of(trigger) if trigger is not None else {before.status}
        if current is None or current.version != before.version or current.status not in allowed:
            raise ConcurrentTransition(f"refund {before.refund_id} changed concurrently")
        self._staged[after.refund_id] = after

    async def unsettled(self, *, updated_before: datetime, limit: int) -> Sequence[Refund]:
        due = [
            r for r in self._visible().values() if r.status in _UNSETTLED and r.updated_at < updated_before
        ]
        return sorted(due, key=lambda r: (r.updated_at, r.refund_id))[:limit]

    def _visible(self) -> dict[str, Refund]:
        return {**self._tables.refunds, **self._staged}

    def commit(self) -> None:
        self._tables.refunds.update(self._staged)

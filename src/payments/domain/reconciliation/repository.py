"""Where reconciliation keeps the gateway's settlements, its runs and the discrepancies they found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Protocol

from payments.domain.gateway import GatewaySettlement
from payments.domain.reconciliation.model import (
    Finding,
    MismatchKind,
    OurRecords,
    OurSettlement,
    ReconciliationRun,
    RunStatus,
    StoredItem,
)


class SettlementRepository(Protocol):
    """The gateway's settlements as we received them, one row per (settlement id, order id)."""

    async def record(self, settlement: GatewaySettlement, payment_id: str | None, *, now: datetime) -> bool:
        """Store the settlement of one order; True if it is new, False if it was stored before.

        ``payment_id`` is None when no payment of ours has the order id: the row is kept as an orphan.
        """
        ...

    async def for_payment(self, payment_id: str) -> list[OurSettlement]:
        """The payment's settlements, oldest payout first."""
        ...


class ReconciliationRepository(Protocol):
    """Runs, their findings kept as items across runs, and our side of the comparison."""

    async def start_run(self, run: ReconciliationRun) -> None:
        """Record a new run (``Conflict`` if its id is taken)."""
        ...

    async def finish_run(
        self,
        run_id: str,
        *,
        status: RunStatus,
        counts: Mapping[str, int],
        input_digest: str | None,
        finished_at: datetime,
        error: str | None,
    ) -> None:
        """Close a run with its outcome (``NotFound`` if there is no such run)."""
        ...

    async def get_run(self, run_id: str) -> ReconciliationRun:
        """One run; ``NotFound`` if there is none."""
        ...

    async def runs(self, limit: int) -> list[ReconciliationRun]:
        """The latest runs, newest first."""
        ...

    async def record_findings(
        self, run: ReconciliationRun, findings: Sequence[Finding], now: datetime
    ) -> list[StoredItem]:
        """Store what ``run`` found: a discrepancy already open (same key) is seen again by this run,
        a new one opens an item. The items, in the findings' order."""
        ...

    async def resolve_unseen(
        self, run: ReconciliationRun, seen_keys: Set[str], now: datetime, *, examined: Set[str] = frozenset()
    ) -> int:
        """Resolve (never delete) the open items ``run`` did not find again, of a range ``run``'s
        contains, or of a ``JUDGED_PER_PAYMENT`` kind about a payment in ``examined`` (the payments
        ``run`` read); how many."""
        ...

    async def items(self, run_id: str) -> list[StoredItem]:
        """The run's report: the items it found (with the finding as it found it) and those it
        resolved, sorted by kind and key."""
        ...

    async def open_counts(self) -> Mapping[MismatchKind, int]:
        """How many items are open now, for every kind (0 for a kind with none)."""
        ...

    async def our_records(
        self,
        start: datetime,
        end: datetime,
        *,
        webhooks_before: datetime,
        orders: Sequence[str] = (),
    ) -> OurRecords:
        """Our side for ``[start, end)``: payments created or first paid in it, with their successful
        attempts and settlements, plus the payments of ``orders`` (the orders the gateway's records in
        the range name: a payout for an earlier day's payment is then no orphan); refunds of the
        range's own payments; webhooks received in it before ``webhooks_before`` that did not end
        SUCCESS. Each sorted by id."""
        ...

    async def lock_range(self, start: datetime, end: datetime) -> bool:
        """Try to take the range's lock until this unit of work ends; False if another holds it."""
        ...


__all__ = ["ReconciliationRepository", "SettlementRepository"]

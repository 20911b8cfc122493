"""In-memory settlements and reconciliation repositories with the PostgreSQL ones' rules.

Writes are staged and reach the tables only when the unit of work commits. Like the SQL: one
settlement row per (settlement id, order id), an orphan learning its payment later; one open item per
key, seen again by later runs; items resolved (never deleted) by a run whose range contains theirs;
each run's report keeps the findings as that run saw them; ``lock_range`` is a try-lock held until
the unit of work ends. ``our_records`` reads what other units of work committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.reconciliation import item_id_for
from payments.domain.errors import Conflict, NotFound
from payments.domain.gateway import AttemptStatus, GatewaySettlement
from payments.domain.payment.model import Payment
from payments.domain.reconciliation.model import (
    JUDGED_PER_PAYMENT,
    Finding,
    MismatchKind,
    OurPayment,
    OurRecords,
    OurRefund,
    OurSettlement,
    OurWebhook,
    ReconciliationRun,
    Resolution,
    RunStatus,
    StoredItem,
)
from payments.domain.refund.model import Refund
from payments.domain.webhook.log import WebhookLog, WebhookStatus
from tests.fakes.payments import PaymentTables
from tests.fakes.refunds import RefundTables
from tests.fakes.webhook_logs import WebhookTables


@dataclass(frozen=True)
class SettlementRow:
    settlement: GatewaySettlement
    payment_id: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class ItemRow:
    item: StoredItem
    #: The range of the run that last found it.
    start: datetime
    end: datetime


@dataclass
class ReconciliationTables:
    """The committed rows every unit of work shares."""

    settlements: dict[tuple[str, str], SettlementRow] = field(default_factory=dict)
    runs: dict[str, ReconciliationRun] = field(default_factory=dict)
    items: dict[str, ItemRow] = field(default_factory=dict)
    #: (run id, item id) -> the finding as that run saw it.
    run_items: dict[tuple[str, str], Finding] = field(default_factory=dict)
    #: Ranges locked by a unit of work still open (the advisory lock).
    locked: set[tuple[datetime, datetime]] = field(default_factory=set)


class InMemorySettlementRepository:
    def __init__(self, tables: ReconciliationTables) -> None:
        self._tables = tables
        self._staged: dict[tuple[str, str], SettlementRow] = {}

    async def record(self, settlement: GatewaySettlement, payment_id: str | None, *, now: datetime) -> bool:
        key = (settlement.settlement_id, settlement.order_id)
        known = self._visible().get(key)
        if known is not None:
            if known.payment_id is None and payment_id is not None:
                self._staged[key] = replace(known, payment_id=payment_id)
            return False
        self._staged[key] = SettlementRow(settlement, payment_id, now)
        return True

    async def for_payment(self, payment_id: str) -> list[OurSettlement]:
        return settlements_of(self._visible().values(), payment_id)

    def _visible(self) -> dict[tuple[str, str], SettlementRow]:
        return {**self._tables.settlements, **self._staged}

    def commit(self) -> None:
        self._tables.settlements.update(self._staged)


def settlements_of(rows: Iterable[SettlementRow], payment_id: str) -> list[OurSettlement]:
    mine = [row.settlement for row in rows if row.payment_id == payment_id]
    far = datetime.max.replace(tzinfo=UTC)
    mine.sort(key=lambda s: (s.settled_at or far, s.settlement_id))
    return [
        OurSettlement(
            settlement_id=s.settlement_id,
            attempt_id=s.attempt_id,
            amount=s.settlement_amount,
            utr=s.utr,
            settled_at=s.settled_at,
        )
        for s in mine
    ]


class InMemoryReconciliationRepository:
    def __init__(
        self,
        tables: ReconciliationTables,
        *,
        payments: PaymentTables,
        refunds: RefundTables,
        webhooks: WebhookTables,
    ) -> None:
        self._tables = tables
        self._payments = payments
        self._refunds = refunds
        self._webhooks = webhooks
        self._runs: dict[str, ReconciliationRun] = {}
        self._items: dict[str, ItemRow] = {}
        self._run_items: dict[tuple[str, str], Finding] = {}
        self._locks: set[tuple[datetime, datetime]] = set()

    async def start_run(self, run: ReconciliationRun) -> None:
        if run.run_id in self._visible_runs():
            raise Conflict(f"reconciliation run {run.run_id} exists")
        self._runs[run.run_id] = _stored(run)

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
        run = await self.get_run(run_id)
        self._runs[run_id] = _stored(
            replace(
                run,
                status=status,
                counts=dict(counts),
                input_digest=input_digest,
                finished_at=finished_at,
                error=error,
            )
        )

    async def get_run(self, run_id: str) -> ReconciliationRun:
        run = self._visible_runs().get(run_id)
        if run is None:
            raise NotFound(f"reconciliation run {run_id} not found")
        return run

    async def runs(self, limit: int) -> list[ReconciliationRun]:
        runs = sorted(self._visible_runs().values(), key=lambda r: (r.started_at, r.run_id), reverse=True)
        return runs[:limit]

    async def record_findings(
        self, run: ReconciliationRun, findings: Sequence[Finding], now: datetime
    ) -> list[StoredItem]:
        stored = []
        for original in findings:
            finding = _round_trip(original)
            open_row = self._open_item(finding.key)
            if open_row is None:
                item = StoredItem(
                    item_id=item_id_for(run.run_id, finding.key),
                    run_id=run.run_id,
                    first_run_id=run.run_id,
                    finding=finding,
                    resolution=Resolution.OPEN,
                    resolved_by_run=None,
                    resolved_at=None,
                )
            else:
                item = replace(open_row.item, run_id=run.run_id, finding=finding)
            self._items[item.item_id] = ItemRow(item, run.start, run.end)
            self._run_items[(run.run_id, item.item_id)] = finding
            stored.append(replace(item, finding=original))
        return stored

    async def resolve_unseen(
        self, run: ReconciliationRun, seen_keys: Set[str], now: datetime, *, examined: Set[str] = frozenset()
    ) -> int:
        resolved = 0
        for row in list(self._visible_items().values()):
            item = row.item
            judged = item.finding.payment_id in examined and item.finding.kind in JUDGED_PER_PAYMENT
            covered = (row.start >= run.start and row.end <= run.end) or judged
            if item.resolution is Resolution.OPEN and covered and item.finding.key not in seen_keys:
                done = replace(
                    item, resolution=Resolution.RESOLVED, resolved_by_run=run.run_id, resolved_at=now
                )
                self._items[item.item_id] = replace(row, item=done)
                resolved += 1
        return resolved

    async def items(self, run_id: str) -> list[StoredItem]:
        items = self._visible_items()
        report = [
            replace(items[item_id].item, finding=finding, run_id=run_id)
            for (found_by, item_id), finding in self._visible_run_items().items()
            if found_by == run_id
        ]
        found = {item.item_id for item in report}
        report += [
            row.item
            for row in items.values()
            if row.item.resolved_by_run == run_id and row.item.item_id not in found
        ]
        return sorted(report, key=lambda i: (i.finding.kind.value, i.finding.key, i.item_id))

    async def open_counts(self) -> Mapping[MismatchKind, int]:
        counts = dict.fromkeys(MismatchKind, 0)
        for row in self._visible_items().values():
            if row.item.resolution is Resolution.OPEN:
                counts[row.item.finding.kind] += 1
        return counts

    async def our_records(
        self,
        start: datetime,
        end: datetime,
        *,
        webhooks_before: datetime,
        orders: Sequence[str] = (),
    ) -> OurRecords:
        # Created in the range, or first paid in it, plus those of the orders named (as the PostgreSQL
        # queries select them); refunds of the range's own payments only.
        in_range = [
            p
            for p in self._payments.payments.values()
            if start <= p.created_at < end or self._paid_within(p, start, end)
        ]
        ids = {p.payment_id for p in in_range}
        named = [
            p
            for p in self._payments.payments.values()
            if p.order_id in set(orders) and p.payment_id not in ids
        ]
        payments = sorted([*in_range, *named], key=lambda p: p.payment_id)
        refunds = [r for r in self._refunds.refunds.values() if r.payment_id in ids]
        webhooks = [
            w
            for w in self._webhooks.rows.values()
            if start <= w.received_at < min(end, webhooks_before) and w.status is not WebhookStatus.SUCCESS
        ]
        return OurRecords(
            payments=tuple(replace(self._our_payment(p), in_range=p.payment_id in ids) for p in payments),
            refunds=tuple(_our_refund(r) for r in sorted(refunds, key=lambda r: r.refund_id)),
            webhooks=tuple(_our_webhook(w) for w in sorted(webhooks, key=lambda w: w.id)),
        )

    def _paid_within(self, payment: Payment, start: datetime, end: datetime) -> bool:
        paid_at = self._our_payment(payment).succeeded_at
        return paid_at is not None and start <= paid_at < end

    def _our_payment(self, payment: Payment) -> OurPayment:
        won = sorted(
            (
                attempt
                for owner, attempt in self._payments.attempts.values()
                if owner == payment.payment_id and attempt.status is AttemptStatus.SUCCESS
            ),
            key=lambda attempt: attempt.attempt_id,
        )
        times = [attempt.completed_at for attempt in won if attempt.completed_at is not None]
        return OurPayment(
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            amount=payment.amount,
            status=payment.status.value,
            successful_attempt_ids=tuple(attempt.attempt_id for attempt in won),
            succeeded_at=min(times) if times else None,
            settlements=tuple(settlements_of(self._tables.settlements.values(), payment.payment_id)),
        )

    async def lock_range(self, start: datetime, end: datetime) -> bool:
        key = (start.astimezone(UTC), end.astimezone(UTC))
        if key in self._locks:
            return True  # re-entrant within one transaction, as the advisory lock is
        if key in self._tables.locked:
            return False
        self._tables.locked.add(key)
        self._locks.add(key)
        return True

    def _open_item(self, key: str) -> ItemRow | None:
        for row in self._visible_items().values():
            if row.item.finding.key == key and row.item.resolution is Resolution.OPEN:
                return row
        return None

    def _visible_runs(self) -> dict[str, ReconciliationRun]:
        return {**self._tables.runs, **self._runs}

    def _visible_items(self) -> dict[str, ItemRow]:
        return {**self._tables.items, **self._items}

    def _visible_run_items(self) -> dict[tuple[str, str], Finding]:
        return {**self._tables.run_items, **self._run_items}

    def commit(self) -> None:
        self._tables.runs.update(self._runs)
        self._tables.items.update(self._items)
        self._tables.run_items.update(self._run_items)

    def release(self) -> None:
        self._tables.locked -= self._locks
        self._locks.clear()


def _our_refund(refund: Refund) -> OurRefund:
    return OurRefund(
        refund_id=refund.refund_id,
        payment_id=refund.payment_id,
        order_id=refund.order_id,
        amount=refund.amount,
        status=refund.status.value,
        gateway_refund_id=refund.gateway_refund_id,
    )


def _our_webhook(log: WebhookLog) -> OurWebhook:
    return OurWebhook(
        webhook_id=log.id,
        event_type=log.event_type or "",
        status=log.status.value,
        received_at=log.received_at,
        order_id=log.order_id,
    )


def _stored(run: ReconciliationRun) -> ReconciliationRun:
    # As the jsonb column gives the counts back: a plain dict of the same values.
    return replace(run, counts=from_json(to_json(dict(run.counts))) or {})


def _round_trip(finding: Finding) -> Finding:
    # The fake's stand-in for the jsonb round trip: amounts and times come back as the bridge writes them.
    return replace(
        finding,
        ours=None if finding.ours is None else from_json(to_json(finding.ours)),
        theirs=None if finding.theirs is None else from_json(to_json(finding.theirs)),
        difference=from_json(to_json(finding.difference)) or {},
    )

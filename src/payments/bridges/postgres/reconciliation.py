"""Settlements, reconciliation runs and their items in PostgreSQL (``SettlementRepository``,
``ReconciliationRepository``).

An item is one discrepancy, kept across runs under its key: one open item per key (a partial UNIQUE
index), seen again by each run that finds it, resolved (never deleted) by a run that covers its range
and no longer finds it. ``reconciliation_run_items`` keeps which run found which item, with the
finding as that run saw it, so a run's report does not change when later runs look again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence, Set
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pool import Connection
from payments.domain.errors import Conflict, NotFound
from payments.domain.gateway import GatewaySettlement
from payments.domain.money import Money
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

#: Store one order's share of a payout once; an orphan learns its payment if a later report knows it.
INSERT_SETTLEMENT: Final = """
INSERT INTO settlements (
    settlement_id, attempt_id, order_id, payment_id, order_amount, service_charge, service_tax,
    settlement_amount, currency, utr, paid_at, settled_at, recorded_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (settlement_id, order_id) DO UPDATE SET payment_id = EXCLUDED.payment_id
WHERE settlements.payment_id IS NULL AND EXCLUDED.payment_id IS NOT NULL
RETURNING (xmax = 0) AS inserted
"""
#: One payment's settlements, oldest payout first.
SELECT_SETTLEMENTS: Final = """
SELECT payment_id, settlement_id, attempt_id, settlement_amount, currency, utr, settled_at
FROM settlements WHERE payment_id = ANY($1::text[])
ORDER BY payment_id, settled_at NULLS LAST, settlement_id
"""

_RUN_COLUMNS: Final = """
    run_id, range_start, range_end, status, trigger, rule_version, input_digest, counts::text AS counts,
    started_at, finished_at, error, rerun_of
"""
#: A new run.
INSERT_RUN: Final = """
INSERT INTO reconciliation_runs (
    run_id, range_start, range_end, status, trigger, rule_version, input_digest, counts, started_at,
    finished_at, error, rerun_of
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, $9, $10, $11, $12)
"""
#: Close a run with its outcome.
FINISH_RUN: Final = """
UPDATE reconciliation_runs
SET status = $2, counts = $3::text::jsonb, input_digest = $4, finished_at = $5, error = $6
WHERE run_id = $1
"""
#: One run.
SELECT_RUN: Final = f"SELECT {_RUN_COLUMNS} FROM reconciliation_runs WHERE run_id = $1"  # noqa: S608
#: Run history, newest first.
SELECT_RUNS: Final = f"""
SELECT {_RUN_COLUMNS} FROM reconciliation_runs ORDER BY started_at DESC, run_id DESC LIMIT $1
"""  # noqa: S608

#: Open an item, or see the open item with this key again (its latest view and range follow this run).
UPSERT_ITEM: Final = """
INSERT INTO reconciliation_items (
    item_id, kind, key, payment_id, ours, theirs, difference, resolution, first_run_id, last_run_id,
    range_start, range_end, created_at
)
VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7::text::jsonb, 'open', $8, $8, $9, $10, $11)
ON CONFLICT (key) WHERE resolution = 'open' DO UPDATE
SET kind = EXCLUDED.kind, payment_id = EXCLUDED.payment_id, ours = EXCLUDED.ours,
    theirs = EXCLUDED.theirs, difference = EXCLUDED.difference, last_run_id = EXCLUDED.last_run_id,
    range_start = EXCLUDED.range_start, range_end = EXCLUDED.range_end
RETURNING item_id, first_run_id
"""
#: Remember that this run found this item, as it found it.
INSERT_RUN_ITEM: Final = """
INSERT INTO reconciliation_run_items (run_id, item_id, ours, theirs, difference)
VALUES ($1, $2, $3::text::jsonb, $4::text::jsonb, $5::text::jsonb)
ON CONFLICT (run_id, item_id) DO UPDATE
SET ours = EXCLUDED.ours, theirs = EXCLUDED.theirs, difference = EXCLUDED.difference
"""
#: Resolve open items this run covered (its range contains theirs) and did not find again.
RESOLVE_UNSEEN: Final = """
UPDATE reconciliation_items
SET resolution = 'resolved', resolved_by_run = $1, resolved_at = $4
WHERE resolution = 'open' AND NOT (key = ANY($5::text[]))
  AND ((range_start >= $2 AND range_end <= $3) OR (payment_id = ANY($6::text[]) AND kind = ANY($7::text[])))
"""
#: A run's report: what it found (as it found it), then what it resolved without finding.
#: Open items per kind (the partial index of open keys bounds the scan to open rows).
COUNT_OPEN_ITEMS: Final = """
SELECT kind, count(*)::int AS open
  FROM reconciliation_items
 WHERE resolution = 'open'
 GROUP BY kind
"""

SELECT_RUN_ITEMS: Final = """
SELECT i.item_id, r.run_id AS last_run_id, i.first_run_id, i.kind, i.key, i.payment_id,
       r.ours::text AS ours, r.theirs::text AS theirs, r.difference::text AS difference,
       i.resolution, i.resolved_by_run, i.resolved_at
FROM reconciliation_run_items r JOIN reconciliation_items i USING (item_id)
WHERE r.run_id = $1
UNION ALL
SELECT i.item_id, i.last_run_id, i.first_run_id, i.kind, i.key, i.payment_id,
       i.ours::text, i.theirs::text, i.difference::text, i.resolution, i.resolved_by_run, i.resolved_at
FROM reconciliation_items i
WHERE i.resolved_by_run = $1
  AND NOT EXISTS (SELECT 1 FROM reconciliation_run_items r WHERE r.run_id = $1 AND r.item_id = i.item_id)
ORDER BY kind, key, item_id
"""

#: Our payments created in [start, end) or first paid in it, with when that success completed. The
#: time rules judge a payment by its success time, so a payment created before midnight and paid
#: after it belongs to the next day's run, which must find it.
_PAYMENT_COLUMNS: Final = """
SELECT p.payment_id, p.order_id, p.amount, p.currency, p.status,
       COALESCE(array_agg(t.provider_transaction_id ORDER BY t.provider_transaction_id)
                FILTER (WHERE t.status = 'SUCCESS'), '{}') AS successful_attempt_ids,
       min(COALESCE(t.completed_at, t.updated_at)) FILTER (WHERE t.status = 'SUCCESS') AS succeeded_at
FROM payments p LEFT JOIN transactions t USING (payment_id)
"""
SELECT_OUR_PAYMENTS: Final = (
    _PAYMENT_COLUMNS  # noqa: S608 (constant SQL text, no input)
    + """
WHERE p.payment_id IN (
    -- Two index range scans (0014), not an OR the planner can only answer by scanning every payment.
    SELECT payment_id FROM payments WHERE created_at >= $1 AND created_at < $2
    UNION
    SELECT payment_id FROM transactions
    WHERE status = 'SUCCESS' AND COALESCE(completed_at, updated_at) >= $1
      AND COALESCE(completed_at, updated_at) < $2
)
GROUP BY p.payment_id
ORDER BY p.payment_id
"""
)
#: Payments of orders the gateway's records in the range name, outside the range themselves (a payout
#: in the range for a payment of an earlier day): known to us, so no orphan.
SELECT_PAYMENTS_OF_ORDERS: Final = (
    _PAYMENT_COLUMNS
    + """
WHERE p.order_id = ANY($1::text[]) AND NOT (p.payment_id = ANY($2::text[]))
GROUP BY p.payment_id
ORDER BY p.payment_id
"""
)
#: The refunds of those payments.
SELECT_OUR_REFUNDS: Final = """
SELECT r.refund_id, r.payment_id, COALESCE(r.order_id, p.order_id) AS order_id, r.amount, r.currency,
       r.status, r.provider_refund_id
FROM refunds r JOIN payments p USING (payment_id)
WHERE r.payment_id = ANY($1::text[])
ORDER BY r.refund_id
"""
#: Webhooks received in [start, end) and before the grace cut-off that did not end SUCCESS.
SELECT_OUR_WEBHOOKS: Final = """
SELECT id, COALESCE(event_type, '') AS event_type, processing_status, received_at, order_id
FROM webhook_logs
WHERE received_at >= $1 AND received_at < $2 AND received_at < $3 AND processing_status <> 'SUCCESS'
ORDER BY id
"""
#: Held until the transaction ends; False at once if another transaction holds it.
TRY_LOCK: Final = "SELECT pg_try_advisory_xact_lock($1::bigint)"


class PgSettlementRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def record(self, settlement: GatewaySettlement, payment_id: str | None, *, now: datetime) -> bool:
        inserted = await self._connection.fetchval(
            INSERT_SETTLEMENT,
            settlement.settlement_id,
            settlement.attempt_id,
            settlement.order_id,
            payment_id,
            settlement.order_amount.amount,
            settlement.service_charge.amount,
            settlement.service_tax.amount,
            settlement.settlement_amount.amount,
            settlement.settlement_amount.currency,
            settlement.utr,
            settlement.paid_at,
            settlement.settled_at,
            now,
        )
        return bool(inserted)

    async def for_payment(self, payment_id: str) -> list[OurSettlement]:
        rows = await self._connection.fetch(SELECT_SETTLEMENTS, [payment_id])
        return [_settlement(row) for row in rows]


class PgReconciliationRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def start_run(self, run: ReconciliationRun) -> None:
        try:
            async with self._connection.transaction():  # a savepoint: a refusal leaves ours usable
                await self._connection.execute(INSERT_RUN, *_run_values(run))
        except asyncpg.UniqueViolationError as error:
            raise Conflict(f"reconciliation run {run.run_id} exists") from error

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
        done = await self._connection.execute(
            FINISH_RUN, run_id, status.value, to_json(dict(counts)), input_digest, finished_at, error
        )
        if done != "UPDATE 1":
            raise NotFound(f"reconciliation run {run_id} not found")

    async def get_run(self, run_id: str) -> ReconciliationRun:
        row = await self._connection.fetchrow(SELECT_RUN, run_id)
        if row is None:
            raise NotFound(f"reconciliation run {run_id} not found")
        return _run(row)

    async def runs(self, limit: int) -> list[ReconciliationRun]:
        return [_run(row) for row in await self._connection.fetch(SELECT_RUNS, limit)]

    async def record_findings(
        self, run: ReconciliationRun, findings: Sequence[Finding], now: datetime
    ) -> list[StoredItem]:
        stored = []
        for finding in findings:
            ours, theirs, difference = _finding_json(finding)
            row = await self._connection.fetchrow(
                UPSERT_ITEM,
                item_id_for(run.run_id, finding.key),
                finding.kind.value,
                finding.key,
                finding.payment_id,
                ours,
                theirs,
                difference,
                run.run_id,
                run.start,
                run.end,
                now,
            )
            assert row is not None  # an upsert with RETURNING always returns its row
            item_id = row["item_id"]
            await self._connection.execute(INSERT_RUN_ITEM, run.run_id, item_id, ours, theirs, difference)
            stored.append(
                StoredItem(
                    item_id=item_id,
                    run_id=run.run_id,
                    first_run_id=row["first_run_id"],
                    finding=finding,
                    resolution=Resolution.OPEN,
                    resolved_by_run=None,
                    resolved_at=None,
                )
            )
        return stored

    async def resolve_unseen(
        self, run: ReconciliationRun, seen_keys: Set[str], now: datetime, *, examined: Set[str] = frozenset()
    ) -> int:
        done = await self._connection.execute(
            RESOLVE_UNSEEN,
            run.run_id,
            run.start,
            run.end,
            now,
            sorted(seen_keys),
            sorted(examined),
            sorted(kind.value for kind in JUDGED_PER_PAYMENT),
        )
        return int(done.split()[-1])

    async def items(self, run_id: str) -> list[StoredItem]:
        return [_item(row) for row in await self._connection.fetch(SELECT_RUN_ITEMS, run_id)]

    async def open_counts(self) -> Mapping[MismatchKind, int]:
        counts = dict.fromkeys(MismatchKind, 0)
        for row in await self._connection.fetch(COUNT_OPEN_ITEMS):
            counts[MismatchKind(row["kind"])] = row["open"]
        return counts

    async def our_records(
        self,
        start: datetime,
        end: datetime,
        *,
        webhooks_before: datetime,
        orders: Sequence[str] = (),
    ) -> OurRecords:
        rows = await self._connection.fetch(SELECT_OUR_PAYMENTS, start, end)
        ids = [row["payment_id"] for row in rows]
        named = await self._connection.fetch(SELECT_PAYMENTS_OF_ORDERS, sorted(set(orders)), ids)
        rows = sorted([*rows, *named], key=lambda row: row["payment_id"])
        in_range = set(ids)
        settled: dict[str, list[OurSettlement]] = {}
        for row in await self._connection.fetch(SELECT_SETTLEMENTS, [row["payment_id"] for row in rows]):
            settled.setdefault(row["payment_id"], []).append(_settlement(row))
        # Refunds of the range's own payments only: those of an earlier day's are that day's business.
        refunds = await self._connection.fetch(SELECT_OUR_REFUNDS, ids)
        webhooks = await self._connection.fetch(SELECT_OUR_WEBHOOKS, start, end, webhooks_before)
        return OurRecords(
            payments=tuple(
                _payment(row, settled.get(row["payment_id"], []), in_range=row["payment_id"] in in_range)
                for row in rows
            ),
            refunds=tuple(_refund(row) for row in refunds),
            webhooks=tuple(_webhook(row) for row in webhooks),
        )

    async def lock_range(self, start: datetime, end: datetime) -> bool:
        return bool(await self._connection.fetchval(TRY_LOCK, range_lock_key(start, end)))


def item_id_for(run_id: str, key: str) -> str:
    """The id of the item ``run_id`` opens for ``key``: the same inputs name the same item."""
    return "rci_" + hashlib.sha256(f"{run_id}\n{key}".encode()).hexdigest()[:32]


def range_lock_key(start: datetime, end: datetime) -> int:
    """The advisory lock key of a range: one instant is one key, whatever time zone names it."""
    text = f"reconciliation:{start.astimezone(UTC).isoformat()}:{end.astimezone(UTC).isoformat()}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def _finding_json(finding: Finding) -> tuple[str | None, str | None, str]:
    return (
        None if finding.ours is None else to_json(finding.ours),
        None if finding.theirs is None else to_json(finding.theirs),
        to_json(finding.difference),
    )


def _run_values(run: ReconciliationRun) -> tuple[object, ...]:
    return (
        run.run_id,
        run.start,
        run.end,
        run.status.value,
        run.trigger,
        run.rule_version,
        run.input_digest,
        to_json(dict(run.counts)),
        run.started_at,
        run.finished_at,
        run.error,
        run.rerun_of,
    )


def _run(row: asyncpg.Record) -> ReconciliationRun:
    return ReconciliationRun(
        run_id=row["run_id"],
        start=row["range_start"],
        end=row["range_end"],
        status=RunStatus(row["status"]),
        trigger=row["trigger"],
        rule_version=row["rule_version"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        input_digest=row["input_digest"],
        counts=from_json(row["counts"]) or {},
        error=row["error"],
        rerun_of=row["rerun_of"],
    )


def _item(row: asyncpg.Record) -> StoredItem:
    ours: Any = from_json(row["ours"])
    theirs: Any = from_json(row["theirs"])
    return StoredItem(
        item_id=row["item_id"],
        run_id=row["last_run_id"],
        first_run_id=row["first_run_id"],
        finding=Finding(
            kind=MismatchKind(row["kind"]),
            key=row["key"],
            payment_id=row["payment_id"],
            ours=ours,
            theirs=theirs,
            difference=from_json(row["difference"]) or {},
        ),
        resolution=Resolution(row["resolution"]),
        resolved_by_run=row["resolved_by_run"],
        resolved_at=row["resolved_at"],
    )


def _settlement(row: asyncpg.Record) -> OurSettlement:
    return OurSettlement(
        settlement_id=row["settlement_id"],
        attempt_id=row["attempt_id"],
        amount=Money(row["settlement_amount"], row["currency"]),
        utr=row["utr"],
        settled_at=row["settled_at"],
    )


def _payment(row: asyncpg.Record, settlements: Sequence[OurSettlement], *, in_range: bool) -> OurPayment:
    return OurPayment(
        in_range=in_range,
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], row["currency"]),
        status=row["status"],
        successful_attempt_ids=tuple(row["successful_attempt_ids"]),
        succeeded_at=row["succeeded_at"],
        settlements=tuple(settlements),
    )


def _refund(row: asyncpg.Record) -> OurRefund:
    return OurRefund(
        refund_id=row["refund_id"],
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], row["currency"]),
        status=row["status"],
        gateway_refund_id=row["provider_refund_id"],
    )


def _webhook(row: asyncpg.Record) -> OurWebhook:
    return OurWebhook(
        webhook_id=row["id"],
        event_type=row["event_type"],
        status=row["processing_status"],
        received_at=row["received_at"],
        order_id=row["order_id"],
    )

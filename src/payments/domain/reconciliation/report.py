"""The input digest and the reports of a run, reproducible byte for byte.

Two runs over the same range, rule version and inputs give the same findings, the same digest and so
the same report bytes. Reports therefore leave out whatever differs between such runs: run ids, start
and finish times, the trigger, item ids, and what later runs resolved.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

from payments.domain.gateway import ReconciliationEntry
from payments.domain.reconciliation import views
from payments.domain.reconciliation.model import (
    MismatchKind,
    OurRecords,
    ReconciliationRun,
    StoredItem,
    TheirRecords,
)

#: The CSV columns, in order; ours, theirs and difference hold canonical JSON.
CSV_COLUMNS: Final = (
    "range_start",
    "range_end",
    "rule_version",
    "input_digest",
    "kind",
    "key",
    "payment_id",
    "ours",
    "theirs",
    "difference",
)

_T = TypeVar("_T")


def input_digest(ours: OurRecords, theirs: TheirRecords) -> str:
    """SHA-256 (hex) of a canonical JSON of both sides: every record in its JSON view (the gateway's
    raw rows included), records sorted, keys sorted, amounts as exact strings, times ISO 8601 UTC."""
    document = {
        "ours": {
            "payments": _sorted_views(ours.payments, views.our_payment),
            "refunds": _sorted_views(ours.refunds, views.our_refund),
            "webhooks": _sorted_views(ours.webhooks, views.our_webhook),
        },
        "theirs": {
            "settlements": _sorted_views(theirs.settlements, views.gateway_settlement),
            "entries": _sorted_views(theirs.entries, _entry_with_raw),
            "settlement_entries": _sorted_views(theirs.settlement_entries, _entry_with_raw),
        },
    }
    return hashlib.sha256(views.dumps(document).encode()).hexdigest()


def _entry_with_raw(row: ReconciliationEntry) -> dict[str, Any]:
    return views.entry(row, with_raw=True)


def _sorted_views(records: Iterable[_T], view: Callable[[_T], dict[str, Any]]) -> list[str]:
    # Each record as its canonical JSON text, so sorting never compares mixed types.
    return sorted(views.dumps(view(record)) for record in records)


def report_document(run: ReconciliationRun, items: Sequence[StoredItem]) -> dict[str, Any]:
    """The report: range, rule version, input digest, counts per kind and every finding of ``run``,
    in (kind, key) order. Nothing in it tells two runs over the same inputs apart, and nothing a later
    run does changes it: items ``run`` only resolved, and every item's later resolution, stay out
    (the admin API shows those)."""
    ordered = _ordered([item for item in items if item.run_id == run.run_id])
    counts = {kind.value: 0 for kind in MismatchKind}
    for item in ordered:
        counts[item.finding.kind.value] += 1
    return {
        "range": {"start": views.iso(run.start), "end": views.iso(run.end)},
        "rule_version": run.rule_version,
        "input_digest": run.input_digest,
        "counts": counts,
        "total": len(ordered),
        "findings": [_finding_row(item) for item in ordered],
    }


def report_json(run: ReconciliationRun, items: Sequence[StoredItem]) -> bytes:
    """``report_document`` as UTF-8 JSON: sorted keys, two-space indent, one final newline."""
    text = json.dumps(views.plain(report_document(run, items)), sort_keys=True, indent=2, ensure_ascii=False)
    return (text + "\n").encode()


def report_csv(run: ReconciliationRun, items: Sequence[StoredItem]) -> bytes:
    """One header row (``CSV_COLUMNS``) and one row per finding in (kind, key) order; ``\\n`` endings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    head = [views.iso(run.start), views.iso(run.end), run.rule_version, run.input_digest or ""]
    for item in _ordered(items):
        row = _finding_row(item)
        writer.writerow(
            [
                *head,
                row["kind"],
                row["key"],
                row["payment_id"] or "",
                views.dumps(row["ours"]),
                views.dumps(row["theirs"]),
                views.dumps(row["difference"]),
            ]
        )
    return buffer.getvalue().encode()


def _ordered(items: Sequence[StoredItem]) -> list[StoredItem]:
    # The finding's canonical JSON breaks ties, should a caller pass one key twice.
    return sorted(
        items, key=lambda item: (item.finding.kind.value, item.finding.key, views.dumps(_finding_row(item)))
    )


def _finding_row(item: StoredItem) -> dict[str, Any]:
    finding = item.finding
    return {
        "kind": finding.kind.value,
        "key": finding.key,
        "payment_id": finding.payment_id,
        "ours": views.plain(finding.ours),
        "theirs": views.plain(finding.theirs),
        "difference": views.plain(finding.difference),
    }

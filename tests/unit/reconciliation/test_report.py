"""The input digest and the reports: the same inputs and findings give the same bytes."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import timedelta

from payments.domain.reconciliation.model import (
    RULE_VERSION,
    Finding,
    ReconciliationRun,
    Resolution,
    RunStatus,
    StoredItem,
)
from payments.domain.reconciliation.report import (
    CSV_COLUMNS,
    input_digest,
    report_csv,
    report_document,
    report_json,
)
from tests.unit.reconciliation.builders import END, NOW, START, clean_ours, clean_theirs, inr, run_compare
from tests.unit.reconciliation.test_rules import messy, shuffled


def run(run_id: str, digest: str, *, started: int = 0) -> ReconciliationRun:
    return ReconciliationRun(
        run_id=run_id,
        start=START,
        end=END,
        status=RunStatus.SUCCEEDED,
        trigger="schedule" if started == 0 else "rerun",
        rule_version=RULE_VERSION,
        started_at=NOW + timedelta(minutes=started),
        finished_at=NOW + timedelta(minutes=started + 1),
        input_digest=digest,
        counts={"x": started},
    )


def stored(findings: list[Finding], run_id: str) -> list[StoredItem]:
    return [
        StoredItem(
            item_id=f"{run_id}-{n}",
            run_id=run_id,
            first_run_id=run_id,
            finding=finding,
            resolution=Resolution.OPEN,
            resolved_by_run=None,
            resolved_at=None,
        )
        for n, finding in enumerate(findings)
    ]


def test_the_digest_ignores_input_order() -> None:
    ours, theirs = messy()
    digest = input_digest(ours, theirs)
    assert len(digest) == 64
    for seed in range(5):
        assert input_digest(*shuffled(ours, theirs, seed)) == digest


def test_the_digest_changes_when_any_input_changes() -> None:
    ours, theirs = clean_ours(), clean_theirs()
    digest = input_digest(ours, theirs)
    changed_amount = replace(
        ours, payments=(replace(ours.payments[0], amount=inr("100.01")), *ours.payments[1:])
    )
    changed_raw = replace(
        theirs, entries=(replace(theirs.entries[0], raw={"note": "other"}), *theirs.entries[1:])
    )
    changed_time = replace(
        theirs,
        settlements=(
            replace(theirs.settlements[0], settled_at=END + timedelta(seconds=1)),
            *theirs.settlements[1:],
        ),
    )
    changed_webhook = replace(ours, webhooks=ours.webhooks[1:])
    digests = {
        input_digest(changed_amount, theirs),
        input_digest(ours, changed_raw),
        input_digest(ours, changed_time),
        input_digest(changed_webhook, theirs),
        digest,
    }
    assert len(digests) == 5


def test_two_runs_over_the_same_inputs_give_identical_reports() -> None:
    ours, theirs = messy()
    first = run("run_a", input_digest(ours, theirs))
    again_ours, again_theirs = shuffled(ours, theirs, 3)
    second = run("run_b", input_digest(again_ours, again_theirs), started=90)
    items_a = stored(run_compare(ours, theirs), "run_a")
    items_b = list(
        reversed(stored(run_compare(again_ours, again_theirs, now=NOW + timedelta(hours=2)), "run_b"))
    )
    assert report_json(first, items_a) == report_json(second, items_b)
    assert report_csv(first, items_a) == report_csv(second, items_b)


def test_the_json_report_holds_range_version_digest_counts_and_findings() -> None:
    ours, theirs = messy()
    findings = run_compare(ours, theirs)
    the_run = run("run_a", input_digest(ours, theirs))
    document = json.loads(report_json(the_run, stored(findings, "run_a")))
    assert document == report_document(the_run, stored(findings, "run_a"))
    assert document["range"] == {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-02T00:00:00+00:00"}
    assert document["rule_version"] == RULE_VERSION
    assert document["input_digest"] == input_digest(ours, theirs)
    assert document["counts"]["orphan_payment"] == 1
    assert document["counts"]["missing_settlement"] == 0
    assert sum(document["counts"].values()) == document["total"] == len(findings)
    assert [f["key"] for f in document["findings"]] == [f.key for f in findings]
    assert set(document["findings"][0]) == {
        "kind",
        "key",
        "payment_id",
        "ours",
        "theirs",
        "difference",
    }
    text = report_json(the_run, stored(findings, "run_a")).decode()
    for volatile in ("run_a", "started_at", "finished_at", "item_id", "resolved_at", "schedule"):
        assert volatile not in text


def test_the_csv_report_has_one_header_and_one_row_per_finding() -> None:
    ours, theirs = messy()
    findings = run_compare(ours, theirs)
    body = report_csv(run("run_a", input_digest(ours, theirs)), stored(findings, "run_a"))
    assert b"\r" not in body
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(findings) + 1
    first = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert first["key"] == findings[0].key
    assert json.loads(first["difference"]) == dict(findings[0].difference)
    assert "resolution" not in first  # a later run may resolve it; the report must not change


def test_items_a_run_only_resolved_stay_out_of_its_report() -> None:
    ours, theirs = messy()
    findings = run_compare(ours, theirs)
    the_run = run("run_b", input_digest(ours, theirs))
    found = stored(findings[:1], "run_b")
    resolved_earlier = [
        StoredItem(
            item_id="old",
            run_id="run_a",
            first_run_id="run_a",
            finding=findings[1],
            resolution=Resolution.RESOLVED,
            resolved_by_run="run_b",
            resolved_at=None,
        )
    ]

    document = report_document(the_run, [*found, *resolved_earlier])

    assert [f["key"] for f in document["findings"]] == [findings[0].key]


def test_an_empty_run_reports_zero_counts() -> None:
    the_run = run("run_a", input_digest(clean_ours(), clean_theirs()))
    document = report_document(the_run, [])
    assert document["total"] == 0
    assert set(document["counts"].values()) == {0}
    assert report_csv(the_run, []) == (",".join(CSV_COLUMNS) + "\n").encode()

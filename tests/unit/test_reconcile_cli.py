"""``payments reconcile``: its range arguments, report options and exit codes."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.reconciliation.model import RULE_VERSION, ReconciliationRun, RunStatus
from payments.domain.reconciliation.service import IST, ReconciliationFailed, RunInProgress
from payments.pipeline import bootstrap, cli
from payments.pipeline.settings import load_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def parse(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(cli.glue_relative_times(["reconcile", *argv]))


def finished_run(counts: dict[str, int]) -> ReconciliationRun:
    return ReconciliationRun(
        run_id="rec_0123",
        start=datetime(2026, 11, 24, tzinfo=IST),
        end=datetime(2026, 11, 25, tzinfo=IST),
        status=RunStatus.SUCCEEDED,
        trigger="cli",
        rule_version=RULE_VERSION,
        started_at=NOW,
        finished_at=NOW,
        input_digest="ab" * 32,
        counts=counts,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25", datetime(2026, 11, 24, 18, 30, tzinfo=UTC)),
        ("2026-11-25T06:00+05:30", datetime(2026, 11, 25, 0, 30, tzinfo=UTC)),
        ("2026-11-25T06:00", datetime(2026, 11, 25, 6, 0, tzinfo=UTC)),
        ("-24h", NOW - timedelta(hours=24)),
        ("now", NOW),
    ],
)
def test_a_bound_is_a_date_at_midnight_ist_an_iso_time_utc_unless_it_says_or_relative(text, expected):
    parsed = cli.parse_reconcile_bound(text, now=NOW)

    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_reconcile_takes_a_range_and_at_most_one_report_format():
    arguments = parse("--from", "2026-11-24", "--to", "2026-11-25", "--csv")

    assert arguments.start == datetime(2026, 11, 24, tzinfo=IST)
    assert arguments.end == datetime(2026, 11, 25, tzinfo=IST)
    assert arguments.report == "csv"
    assert parse("--from", "-48h", "--to", "-24h").report is None


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("--from", "2026-11-24"),
        ("--from", "yesterday", "--to", "2026-11-25"),
        ("--from", "2026-11-24", "--to", "2026-11-25", "--json", "--csv"),
    ],
)
def test_bad_reconcile_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)

    assert exited.value.code == 2
    assert "payments reconcile: error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-11-25", "2026-11-24"), ("2026-11-25", "2026-11-25"), ("2026-01-01", "2026-12-01")],
)
async def test_an_empty_reversed_or_too_long_range_exits_2_before_connecting(start, end, capsys, monkeypatch):
    async def must_not_run(*args, **kwargs):
        raise AssertionError("connected")

    monkeypatch.setattr(bootstrap, "run_reconcile", must_not_run)

    code = await cli._reconcile(load_settings({}), parse("--from", start, "--to", end))

    assert code == cli.EXIT_CONFIGURATION == 2
    assert "payments reconcile:" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"), [(RunInProgress(), 4), (ReconciliationFailed("dependency_unavailable: down"), 1)]
)
async def test_a_run_in_progress_exits_4_and_a_failed_run_exits_1(error, code, capsys, monkeypatch):
    async def refuse(settings, start, end):
        raise error

    monkeypatch.setattr(bootstrap, "run_reconcile", refuse)

    assert (
        await cli._reconcile(load_settings({}), parse("--from", "2026-11-24", "--to", "2026-11-25")) == code
    )
    assert error.message in capsys.readouterr().err


async def test_a_run_with_mismatches_exits_0_with_the_summary_on_stderr_and_the_report_on_stdout(
    capsysbinary, monkeypatch
):
    run = finished_run({"missing_settlement": 2, "amount_mismatch": 1})
    calls = []

    async def reconcile(settings, start, end):
        calls.append((start, end))
        return run, []

    monkeypatch.setattr(bootstrap, "run_reconcile", reconcile)

    code = await cli._reconcile(
        load_settings({}), parse("--from", "2026-11-24", "--to", "2026-11-25", "--json")
    )

    out, err = capsysbinary.readouterr()
    assert code == 0
    assert calls == [(run.start, run.end)]
    assert json.loads(out)  # the report, alone on stdout
    assert b"rec_0123 succeeded" in err
    assert b"  amount_mismatch: 1\n  missing_settlement: 2" in err


async def test_without_a_report_the_summary_goes_to_stdout(capsys, monkeypatch):
    async def reconcile(settings, start, end):
        return finished_run({}), []

    monkeypatch.setattr(bootstrap, "run_reconcile", reconcile)

    assert await cli._reconcile(load_settings({}), parse("--from", "2026-11-24", "--to", "2026-11-25")) == 0
    out = capsys.readouterr().out
    assert "rec_0123 succeeded" in out
    assert "no mismatches" in out

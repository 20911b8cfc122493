"""``payments replay`` arguments: times, offsets, and the refusals that exit 2 before connecting."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.pipeline import cli
from payments.pipeline.app import UnknownAgent
from payments.pipeline.settings import load_settings

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T00:00:00Z", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25T05:30:00+05:30", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25", datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-25T10:15", datetime(2026, 11, 25, 10, 15, tzinfo=UTC)),
        ("-24h", NOW - timedelta(hours=24)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-7d", NOW - timedelta(days=7)),
        ("-90s", NOW - timedelta(seconds=90)),
        (" now ", NOW),
    ],
)
def test_a_replay_time_is_iso_8601_in_utc_unless_it_says_or_relative_to_now(text, expected):
    parsed = cli.parse_time(text, now=NOW)

    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_an_iso_time_keeps_the_offset_it_names():
    assert cli.parse_time("2026-11-25T05:30:00+05:30", now=NOW).tzinfo == timezone(
        timedelta(hours=5, minutes=30)
    )


@pytest.mark.parametrize("text", ["yesterday", "-24", "24h", "-1w", "2026-13-01", ""])
def test_anything_else_is_not_a_time(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not a time"):
        cli.parse_time(text, now=NOW)


def test_a_relative_time_after_from_or_to_is_glued_on_so_argparse_takes_it_as_a_value():
    argv = ["replay", "--from", "-24h", "--to", "-1h", "--agents", "fraud"]

    assert cli.glue_relative_times(argv) == ["replay", "--from=-24h", "--to=-1h", "--agents", "fraud"]
    assert cli.glue_relative_times(["replay", "--from", "2026-11-25"]) == ["replay", "--from", "2026-11-25"]
    assert cli.glue_relative_times(["worker", "--agents", "-1h"]) == ["worker", "--agents", "-1h"]


def parse(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(cli.glue_relative_times(["replay", *argv]))


def test_replay_takes_a_start_time_an_end_time_and_agents():
    arguments = parse("--from", "-2h", "--to", "2026-11-25T00:00Z", "--agents", "fraud,alerts.watch")

    assert arguments.start == arguments.now - timedelta(hours=2)
    assert arguments.end == datetime(2026, 11, 25, tzinfo=UTC)
    assert arguments.agents == "fraud,alerts.watch"


def test_replay_can_start_from_an_offset_in_the_log_instead():
    arguments = parse("--from-offset", "42")

    assert arguments.start == 42
    assert arguments.end is None


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("--from", "-1h", "--from-offset", "3"),
        ("--from-offset", "-3"),
        ("--from-offset", "three"),
        ("--from", "last tuesday"),
    ],
)
def test_bad_replay_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        parse(*argv)

    assert exited.value.code == 2
    assert "payments replay: error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (("--from", "-1h", "--to", "-2h"), "--to comes before --from"),
        (("--from", "2999-01-01T00:00Z"), "--from is in the future"),
        (("--from", "-1h", "--agents", "payments"), "not replayable: payments.handle_payment_commands"),
    ],
)
async def test_a_replay_that_cannot_make_sense_exits_2_before_connecting(argv, problem, capsys):
    code = await cli._replay(load_settings({}), parse(*argv))

    assert code == cli.EXIT_CONFIGURATION == 2
    assert problem in capsys.readouterr().err


async def test_an_unknown_agent_is_refused_before_connecting():
    # main() turns UnknownAgent into exit 2, as for `payments worker`.
    with pytest.raises(UnknownAgent, match="unknown agents: nope"):
        await cli._replay(load_settings({}), parse("--from", "-1h", "--agents", "nope"))

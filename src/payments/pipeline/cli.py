"""The ``payments`` command line (DESIGN §2)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop

from payments.bridges.cashfree.signature import InvalidWebhookSignature, WebhookVerifier, wall_clock_ms
from payments.domain.errors import DependencyUnavailable
from payments.domain.reconciliation.model import ReconciliationRun
from payments.domain.reconciliation.report import report_csv, report_json
from payments.domain.reconciliation.service import (
    RangeInvalid,
    ReconciliationFailed,
    RunInProgress,
    check_range,
    parse_bound,
)
from payments.pipeline import bootstrap
from payments.pipeline.app import UnknownAgent
from payments.pipeline.replay import NotReplayable, ReplayFailed, ReplayReport
from payments.pipeline.settings import Settings, SettingsError
from payments.web.auth import mint_token

#: Exit codes: configuration problems and unreachable dependencies are told apart for operators.
EXIT_CONFIGURATION = 2
EXIT_UNAVAILABLE = 3
#: ``payments reconcile``: a run of the same range holds the lock; try again when it has finished.
EXIT_IN_PROGRESS = 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(glue_relative_times(sys.argv[1:] if argv is None else argv))
    try:
        settings = bootstrap.configure(os.environ)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return int(runner.run(arguments.run(settings, arguments)) or 0)
    except SettingsError as error:
        print(f"payments: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except UnknownAgent as error:
        print(f"payments: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except DependencyUnavailable as error:
        print(f"payments: cannot start: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payments", description="CommDesk Payments")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser("migrate", help="apply SQL migrations (idempotent, under an advisory lock)")
    migrate.add_argument(
        "--create-database", action="store_true", help="create the database if it is missing"
    )
    migrate.set_defaults(run=_migrate)

    commands.add_parser(
        "topology", help="declare exchanges, queues, retry tiers, DLQs and the event log"
    ).set_defaults(run=_topology)
    commands.add_parser(
        "audit-verify", help="re-compute the audit log's hash chain (exit 1 naming the first edited row)"
    ).set_defaults(run=_audit_verify)
    commands.add_parser("web", help="serve the HTTP API, webhook ingest, health and /metrics").set_defaults(
        run=_web
    )

    commands.add_parser("sandbox", help="serve the local Cashfree sandbox (default port 8090)").set_defaults(
        run=_sandbox
    )

    _add_smtp_sink(commands)

    worker = commands.add_parser("worker", help="run agents, timers, crontabs and the outbox relay")
    worker.add_argument("--agents", help="comma-separated blueprint or agent names (default: all)")
    worker.set_defaults(run=_worker)

    demo = commands.add_parser("demo", help="run the whole stack on local defaults and show it working")
    demo.add_argument("--serve", action="store_true", help="keep the stack running until Ctrl-C")
    demo.set_defaults(run=_demo)

    verify = commands.add_parser(
        "webhook-verify", help="check a Cashfree webhook's signature and timestamp (no services needed)"
    )
    verify.add_argument("--body-file", type=Path, required=True, help="the raw body, byte for byte")
    verify.add_argument("--timestamp", required=True, help="the x-webhook-timestamp header value")
    verify.add_argument("--signature", required=True, help="the x-webhook-signature header value")
    verify.add_argument(
        "--secret-file", type=Path, help="a file holding the secret (default: CASHFREE_SECRET_KEY)"
    )
    verify.add_argument("--now-ms", type=int, help="check freshness against this time (ms since epoch)")
    verify.set_defaults(run=_webhook_verify)

    _add_bench(commands)
    _add_replay(commands)
    _add_reconcile(commands)

    token = commands.add_parser("token", help="mint an API bearer token (prints only the token)")
    token.add_argument("--user", required=True, help="the user id the token names (its sub)")
    token.add_argument("--admin", action="store_true", help="give the token the admin role")
    token.add_argument("--ttl", type=int, metavar="SECONDS", help="lifetime (default: JWT_TTL_SECONDS)")
    token.set_defaults(run=_token)
    reencrypt = commands.add_parser(
        "reencrypt",
        help="after a key rotation (or migration 0015): seal customers' names, emails and phones, email"
        " recipients and webhook bodies under PAYMENT_ENCRYPTION_KEY (the old key in"
        " PAYMENT_ENCRYPTION_PREVIOUS_KEYS)",
    )
    reencrypt.add_argument("--batch-size", type=int, default=500, help="rows per transaction (500)")
    reencrypt.set_defaults(run=_reencrypt)
    return parser


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench", help="measure ingest against a same-run ceiling, and the pipeline end to end"
    )
    bench.add_argument(
        "--phases",
        type=_names,
        default=("ingest", "pipeline"),
        metavar="LIST",
        help="which parts run: ingest, pipeline (default both)",
    )
    bench.add_argument(
        "--duration", type=float, default=10.0, metavar="SECONDS", help="measured time per run (default 10)"
    )
    bench.add_argument("--requests", type=int, metavar="N", help="measure N requests per run instead")
    bench.add_argument(
        "--warmup", type=float, default=2.0, metavar="SECONDS", help="unmeasured load first (default 2)"
    )
    bench.add_argument("--concurrency", type=int, default=32, metavar="N", help="in flight (default 32)")
    bench.add_argument("--repeat", type=int, default=2, metavar="N", help="runs per target, best kept (2)")
    bench.add_argument(
        "--processes", type=_counts, default=(1, 2), metavar="LIST", help="ingest server processes (1,2)"
    )
    bench.add_argument(
        "--workers", type=_counts, default=(1, 2), metavar="LIST", help="pipeline worker processes (1,2)"
    )
    bench.add_argument(
        "--payments", type=int, default=300, metavar="N", help="payments per pipeline phase (default 300)"
    )
    bench.add_argument("--users", type=int, default=20, metavar="N", help="users creating them (20)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the raw numbers as JSON")
    bench.add_argument(
        "--write-docs",
        type=Path,
        nargs="?",
        const=Path("docs/PERFORMANCE.md"),
        metavar="PATH",
        help="write the results page and the latency plot beside it (default docs/PERFORMANCE.md)",
    )
    bench.set_defaults(run=_bench)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _counts(text: str) -> tuple[int, ...]:
    """``1,2`` as (1, 2); the bench's options check the counts themselves."""
    try:
        return tuple(int(part) for part in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of counts: {text!r}") from None


def _add_smtp_sink(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sink = commands.add_parser(
        "smtp-sink", help="run the development SMTP sink beside a worker (messages to var/mail/*.eml)"
    )
    sink.add_argument("--host", help="the address to listen on (default: SMTP_URL's host)")
    sink.add_argument("--port", type=int, help="the port to listen on (default: SMTP_URL's port)")
    sink.add_argument(
        "--directory", type=Path, default=Path("var/mail"), help="where messages go (default var/mail)"
    )
    sink.set_defaults(run=_smtp_sink)


#: A time relative to now, as ``payments replay`` takes it: ``-24h``, ``-30m``, ``-7d``, ``-90s``.
_RELATIVE_TIME = re.compile(r"-(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, *, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when it names no offset), ``now``, or a time before ``now`` like ``-24h``."""
    text = text.strip()
    if text == "now":
        return now
    if relative := _RELATIVE_TIME.fullmatch(text):
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601 like 2026-11-25T00:00Z, or relative like -24h)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _log_offset(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not an offset in the log: {text!r}")
    return int(text)


def glue_relative_times(argv: Sequence[str]) -> list[str]:
    """``--from -24h`` would read ``-24h`` as an option; pass it on as ``--from=-24h``."""
    glued: list[str] = []
    for argument in argv:
        if glued and glued[-1] in ("--from", "--to") and _RELATIVE_TIME.fullmatch(argument):
            glued[-1] = f"{glued[-1]}={argument}"
        else:
            glued.append(argument)
    return glued


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    now = datetime.now(UTC)

    def time(text: str) -> datetime:
        return parse_time(text, now=now)

    replay = commands.add_parser(
        "replay", help="feed the event log to replayable agents again (backfill, rebuild their tables)"
    )
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument(
        "--from",
        dest="start",
        type=time,
        metavar="TIME",
        help="events from this time: ISO 8601 (UTC unless it says) or relative like -24h, -30m, -7d",
    )
    start.add_argument(
        "--from-offset", dest="start", type=_log_offset, metavar="N", help="from this offset in the log"
    )
    replay.add_argument(
        "--to", dest="end", type=time, metavar="TIME", help="up to this time (default: the end of the log)"
    )
    replay.add_argument(
        "--agents", help="comma-separated blueprint or agent names (default: every replayable)"
    )
    replay.set_defaults(run=_replay, now=now)


def _add_reconcile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    now = datetime.now(UTC)

    def bound(text: str) -> datetime:
        return parse_reconcile_bound(text, now=now)

    reconcile = commands.add_parser(
        "reconcile",
        help="reconcile a range with Cashfree now (exit 0 done, 1 failed, 2 bad arguments, 4 in progress)",
        description=(
            "Compare our payments, refunds, settlements and webhooks with Cashfree's reports for "
            "[--from, --to) and record the findings. A date means 00:00 IST that day; a time without an "
            "offset is UTC. Exit 0 when the run finished (mismatches are a result, not a failure), "
            "1 when it failed, 2 on bad arguments, 3 when a dependency is unreachable, 4 when a run of "
            "the same range is in progress."
        ),
    )
    reconcile.add_argument(
        "--from", dest="start", type=bound, required=True, metavar="DATE_OR_TIME", help="range start"
    )
    reconcile.add_argument(
        "--to", dest="end", type=bound, required=True, metavar="DATE_OR_TIME", help="range end (excluded)"
    )
    report = reconcile.add_mutually_exclusive_group()
    report.add_argument(
        "--json", dest="report", action="store_const", const="json", help="print the JSON report to stdout"
    )
    report.add_argument(
        "--csv", dest="report", action="store_const", const="csv", help="print the CSV report to stdout"
    )
    reconcile.set_defaults(run=_reconcile, report=None)


def parse_reconcile_bound(text: str, *, now: datetime) -> datetime:
    """A reconciliation bound: a date (00:00 IST), an ISO 8601 time (UTC unless it says), ``now``, or
    relative like ``-24h``."""
    stripped = text.strip()
    if stripped == "now" or _RELATIVE_TIME.fullmatch(stripped):
        return parse_time(stripped, now=now)
    try:
        return parse_bound(stripped)
    except RangeInvalid as error:
        raise argparse.ArgumentTypeError(
            f"{error} (a date like 2026-11-25, a time like 2026-11-25T06:00+05:30, or relative like -24h)"
        ) from None


async def _reconcile(settings: Settings, arguments: argparse.Namespace) -> int:
    try:
        check_range(arguments.start, arguments.end)
    except RangeInvalid as error:
        print(f"payments reconcile: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        run, items = await bootstrap.run_reconcile(settings, arguments.start, arguments.end)
    except RunInProgress as error:
        print(f"payments reconcile: {error}", file=sys.stderr)
        return EXIT_IN_PROGRESS
    except ReconciliationFailed as error:
        print(f"payments reconcile: the run failed: {error}", file=sys.stderr)
        return 1
    # With a report on stdout, the summary goes to stderr so the report can be piped as it is.
    summary = sys.stderr if arguments.report else sys.stdout
    print(reconcile_summary(run), file=summary, flush=True)
    if arguments.report == "json":
        sys.stdout.buffer.write(report_json(run, items))
    elif arguments.report == "csv":
        sys.stdout.buffer.write(report_csv(run, items))
    sys.stdout.flush()
    return 0


def reconcile_summary(run: ReconciliationRun) -> str:
    """What ``payments reconcile`` prints: the run, its outcome and its findings per kind."""
    lines = [
        f"reconciliation {run.run_id} {run.status}: [{run.start.isoformat()}, {run.end.isoformat()})",
        f"rule version {run.rule_version}, input digest {run.input_digest}",
    ]
    counts = dict(run.counts)
    if not counts:
        lines.append("no mismatches")
    lines.extend(f"  {kind}: {count}" for kind, count in sorted(counts.items()))
    return "\n".join(lines)


async def _migrate(settings: Settings, arguments: argparse.Namespace) -> int:
    applied = await bootstrap.run_migrate(settings, create_database=arguments.create_database)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _reencrypt(settings: Settings, arguments: argparse.Namespace) -> int:
    if arguments.batch_size < 1:
        print("payments reencrypt: --batch-size must be at least 1", file=sys.stderr)
        return EXIT_CONFIGURATION
    done = await bootstrap.run_reencrypt(settings, batch_size=arguments.batch_size)
    print(
        f"sealed under the current key: {done.payments} payment(s), {done.emails} email(s),"
        f" {done.webhooks} webhook bodies"
    )
    if done.remaining:
        # Rows locked by a transaction while the run passed (a payment being processed): run it again.
        print(f"{done.remaining} row(s) are still under an older key; run payments reencrypt again")
        return 1
    print("no row is under an older key: PAYMENT_ENCRYPTION_PREVIOUS_KEYS can be removed")
    return 0


async def _audit_verify(settings: Settings, arguments: argparse.Namespace) -> int:
    verification = await bootstrap.run_audit_verify(settings)
    if verification.intact:
        print(f"audit chain intact: {verification.checked} rows")
        return 0
    print(f"audit chain BROKEN at row {verification.first_broken_id} ({verification.checked} rows checked)")
    return 1


async def _topology(settings: Settings, arguments: argparse.Namespace) -> int:
    await bootstrap.run_topology(settings)
    print("topology declared")
    return 0


async def _web(settings: Settings, arguments: argparse.Namespace) -> int:
    await bootstrap.run_web(settings)
    return 0


async def _sandbox(settings: Settings, arguments: argparse.Namespace) -> int:
    await bootstrap.run_sandbox(settings)
    return 0


async def _smtp_sink(settings: Settings, arguments: argparse.Namespace) -> int:
    from payments.bridges.smtp.sink import SmtpSink
    from payments.bridges.smtp.url import SmtpUrl

    try:
        # Listen where SMTP_URL points, taking its user and password, so the worker delivers here.
        url = SmtpUrl.parse(settings.smtp.url.get_secret_value())
        sink = SmtpSink.for_url(url, arguments.directory, host=arguments.host, port=arguments.port)
    except ValueError as error:
        print(f"payments smtp-sink: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        await sink.start()
    except OSError as error:
        print(
            f"payments smtp-sink: cannot listen on {sink.host}:{sink.port}: {error.strerror}", file=sys.stderr
        )
        return EXIT_UNAVAILABLE
    print(
        f"SMTP sink on {sink.url}, writing each message to {arguments.directory}/ (Ctrl-C to stop)",
        flush=True,
    )
    try:
        await _until_interrupted()
    finally:
        await sink.stop()
    print(f"SMTP sink stopped after {len(sink.received)} messages")
    return 0


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _worker(settings: Settings, arguments: argparse.Namespace) -> int:
    agents = (
        [name.strip() for name in arguments.agents.split(",") if name.strip()] if arguments.agents else None
    )
    await bootstrap.run_worker(settings, agents=agents)
    return 0


async def _demo(settings: Settings, arguments: argparse.Namespace) -> int:
    from payments.pipeline.demo import run_demo

    # The demo's processes are configured as the demo was, from this environment.
    return await run_demo(settings, serve=arguments.serve, environ=os.environ)


async def _bench(settings: Settings, arguments: argparse.Namespace) -> int:
    from payments.pipeline.bench import BenchError, BenchOptions, parse_phases, run_bench
    from payments.pipeline.bench_pipeline import PipelineOptions

    try:
        options = BenchOptions(
            phases=parse_phases(arguments.phases),
            concurrency=arguments.concurrency,
            duration_seconds=arguments.duration,
            requests=arguments.requests,
            warmup_seconds=arguments.warmup,
            repeat=arguments.repeat,
            processes=arguments.processes,
            pipeline=PipelineOptions(
                workers=arguments.workers, payments=arguments.payments, users=arguments.users
            ),
            json_path=arguments.json,
            docs_path=arguments.write_docs,
        )
    except ValueError as error:
        print(f"payments bench: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        # The service's processes are started from this environment, with the bench's changes on top.
        return await run_bench(settings, options, environ=os.environ)
    except BenchError as error:
        print(f"payments bench: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


async def _replay(settings: Settings, arguments: argparse.Namespace) -> int:
    start, end = arguments.start, arguments.end
    if problem := _replay_range_problem(start, end, now=arguments.now):
        print(f"payments replay: {problem}", file=sys.stderr)
        return EXIT_CONFIGURATION
    agents = (
        [name.strip() for name in arguments.agents.split(",") if name.strip()] if arguments.agents else None
    )
    try:
        report = await bootstrap.run_replay(
            settings, start=start, end=end, agents=agents, progress=_print_replay_progress
        )
    except NotReplayable as error:
        print(f"payments replay: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except ReplayFailed as error:
        print(f"payments replay: {error}", file=sys.stderr)
        return 1
    print(f"replay done: {report.describe()}")
    return 0


def _replay_range_problem(start: datetime | int, end: datetime | None, *, now: datetime) -> str | None:
    if isinstance(start, datetime) and start > now:
        return "--from is in the future"
    if isinstance(start, datetime) and end is not None and end < start:
        return "--to comes before --from"
    return None


def _print_replay_progress(report: ReplayReport) -> None:
    print(f"replaying: {report.describe()}", file=sys.stderr, flush=True)


async def _webhook_verify(settings: Settings, arguments: argparse.Namespace) -> int:
    try:
        body = arguments.body_file.read_bytes()
        secrets = _webhook_secrets(settings, arguments.secret_file)
    except OSError as error:
        print(f"payments: cannot read {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except UnicodeDecodeError:
        print("payments: the secret file is not UTF-8 text", file=sys.stderr)
        return EXIT_CONFIGURATION
    if not secrets:
        print("payments: the secret file is empty", file=sys.stderr)
        return EXIT_CONFIGURATION
    now_ms = arguments.now_ms
    verifier = WebhookVerifier(
        secrets,
        tolerance_seconds=settings.cashfree.webhook_tolerance_seconds,
        now_ms=wall_clock_ms if now_ms is None else lambda: int(now_ms),
    )
    try:
        verifier.verify(body=body, timestamp=arguments.timestamp, signature=arguments.signature)
    except InvalidWebhookSignature as error:
        # Only the closed-set reason is printed: never a secret, never the expected signature.
        print(f"invalid: {error.reason}")
        return 1
    print("valid")
    return 0


async def _token(settings: Settings, arguments: argparse.Namespace) -> int:
    try:
        token = mint_token(
            settings.security,
            user_id=arguments.user,
            admin=arguments.admin,
            now=datetime.now(UTC),
            ttl_seconds=arguments.ttl,
        )
    except ValueError as error:
        print(f"payments: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    print(token)
    return 0


def _webhook_secrets(settings: Settings, secret_file: Path | None) -> list[str]:
    """The keys a webhook may be signed with: the file's, else the client secret and the extra one."""
    if secret_file is not None:
        secret = secret_file.read_text(encoding="utf-8").strip()
        return [secret] if secret else []
    secrets = [settings.cashfree.secret_key.get_secret_value()]
    if settings.cashfree.webhook_secret is not None:
        secrets.append(settings.cashfree.webhook_secret.get_secret_value())
    return secrets

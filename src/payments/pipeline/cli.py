"""The ``payments`` command line (DESIGN §2)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import uvloop

from payments.bridges.cashfree.signature import InvalidWebhookSignature, WebhookVerifier, wall_clock_ms
from payments.domain.errors import DependencyUnavailable
from payments.pipeline import bootstrap
from payments.pipeline.app import UnknownAgent
from payments.pipeline.settings import Settings, SettingsError
from payments.web.auth import mint_token

#: Exit codes: configuration problems and unreachable dependencies are told apart for operators.
EXIT_CONFIGURATION = 2
EXIT_UNAVAILABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
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

    token = commands.add_parser("token", help="mint an API bearer token (prints only the token)")
    token.add_argument("--user", required=True, help="the user id the token names (its sub)")
    token.add_argument("--admin", action="store_true", help="give the token the admin role")
    token.add_argument("--ttl", type=int, metavar="SECONDS", help="lifetime (default: JWT_TTL_SECONDS)")
    token.set_defaults(run=_token)
    return parser


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure webhook ingest against a same-run ceiling")
    bench.add_argument(
        "--duration", type=float, default=10.0, metavar="SECONDS", help="measured time per run (default 10)"
    )
    bench.add_argument("--requests", type=int, metavar="N", help="measure N requests per run instead")
    bench.add_argument(
        "--warmup", type=float, default=2.0, metavar="SECONDS", help="unmeasured load first (default 2)"
    )
    bench.add_argument("--concurrency", type=int, default=32, metavar="N", help="in flight (default 32)")
    bench.add_argument("--repeat", type=int, default=2, metavar="N", help="runs per target, best kept (2)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the raw numbers as JSON")
    bench.add_argument(
        "--write-docs",
        type=Path,
        nargs="?",
        const=Path("docs/PERFORMANCE.md"),
        metavar="PATH",
        help="write the results page (default docs/PERFORMANCE.md)",
    )
    bench.set_defaults(run=_bench)


async def _migrate(settings: Settings, arguments: argparse.Namespace) -> int:
    applied = await bootstrap.run_migrate(settings, create_database=arguments.create_database)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
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


async def _worker(settings: Settings, arguments: argparse.Namespace) -> int:
    agents = (
        [name.strip() for name in arguments.agents.split(",") if name.strip()] if arguments.agents else None
    )
    await bootstrap.run_worker(settings, agents=agents)
    return 0


async def _demo(settings: Settings, arguments: argparse.Namespace) -> int:
    from payments.pipeline.demo import run_demo

    return await run_demo(settings, serve=arguments.serve)


async def _bench(settings: Settings, arguments: argparse.Namespace) -> int:
    from payments.pipeline.bench import BenchError, BenchOptions, run_bench

    try:
        options = BenchOptions(
            concurrency=arguments.concurrency,
            duration_seconds=arguments.duration,
            requests=arguments.requests,
            warmup_seconds=arguments.warmup,
            repeat=arguments.repeat,
            json_path=arguments.json,
            docs_path=arguments.write_docs,
        )
    except ValueError as error:
        print(f"payments bench: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        # payments web is started from this environment, with the bench's own changes on top.
        return await run_bench(settings, options, environ=os.environ)
    except BenchError as error:
        print(f"payments bench: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


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

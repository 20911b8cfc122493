"""The ``payments`` command line (DESIGN §2)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from payments.domain.errors import DependencyUnavailable
from payments.pipeline import bootstrap
from payments.pipeline.app import UnknownAgent
from payments.pipeline.settings import Settings, SettingsError

#: Exit codes: configuration problems and unreachable dependencies are told apart for operators.
EXIT_CONFIGURATION = 2
EXIT_UNAVAILABLE = 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    try:
        settings = bootstrap.configure(os.environ)
        return int(asyncio.run(arguments.run(settings, arguments)) or 0)
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
    commands.add_parser("web", help="serve the HTTP API, webhook ingest, health and /metrics").set_defaults(
        run=_web
    )

    worker = commands.add_parser("worker", help="run agents, timers, crontabs and the outbox relay")
    worker.add_argument("--agents", help="comma-separated blueprint or agent names (default: all)")
    worker.set_defaults(run=_worker)

    demo = commands.add_parser("demo", help="run the whole stack on local defaults and show it working")
    demo.add_argument("--serve", action="store_true", help="keep the stack running until Ctrl-C")
    demo.set_defaults(run=_demo)
    return parser


async def _migrate(settings: Settings, arguments: argparse.Namespace) -> int:
    applied = await bootstrap.run_migrate(settings, create_database=arguments.create_database)
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _topology(settings: Settings, arguments: argparse.Namespace) -> int:
    await bootstrap.run_topology(settings)
    print("topology declared")
    return 0


async def _web(settings: Settings, arguments: argparse.Namespace) -> int:
    await bootstrap.run_web(settings)
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

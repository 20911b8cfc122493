"""``payments demo``: the stack on local defaults, started as real processes and checked end to end.

Migrations and topology first; then the Cashfree sandbox, the web process and a worker as separate
processes; every health check; then the scripted traffic of ``demo_scenario`` (customers' payments
created, paid at the sandbox, declined, retried, verified, replayed, refunded); the fraud burst of
``demo_fraud`` (stopped mid-way, admins alerted live); the payout and reconciliation run of
``demo_settlement`` (one payment settled, one left out, and the run's report names exactly that one);
and finally proof that every event those payments caused left the outbox for RabbitMQ. Later
capabilities add their part of the day there.

Fraud screening runs on its default rules. The demo stands where a proxy would, in front of the API,
and names each customer's address with ``X-Forwarded-For``; the web process trusts it to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import aiohttp

from payments.bridges.smtp.sink import SmtpSink
from payments.bridges.smtp.url import SmtpUrl
from payments.pipeline import bootstrap
from payments.pipeline.demo_fraud import run_fraud_burst
from payments.pipeline.demo_scenario import Customer, Outcome, run_payment_scenario, the_days_customers
from payments.pipeline.demo_settlement import SETTLEMENT_ENVIRONMENT, run_settlement
from payments.pipeline.logging import configure_logging
from payments.pipeline.settings import Settings

#: How long the demo waits for a process to report healthy.
_START_DEADLINE_SECONDS = 60.0
_HEALTH_ROUTES = ("/health", "/health/database", "/health/redis", "/health/queues")
#: The web process trusts the demo (on this host) to name clients' addresses, as a proxy would; on
#: either loopback, since a ``WEB_HOST`` of ``localhost`` may be reached over IPv6.
_WEB_ENVIRONMENT: Final[Mapping[str, str]] = {
    "TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
    # Rate limits stay on, at ten times the defaults: the demo's polls (ten a second, for up to half
    # a minute) and one customer's scripted day could otherwise meet a real client's limits.
    "RATE_LIMIT_PER_IP": "6000/minute",
    "RATE_LIMIT_PER_USER": "3000/minute",
    "RATE_LIMIT_WRITES": "300/minute",
}


async def run_demo(settings: Settings, *, serve: bool, environ: Mapping[str, str]) -> int:
    """Start everything, check it, print where to look; 0 when every check passed.

    ``environ`` is the environment the demo was configured from; its processes start from it too.
    """
    # The demo talks to people: its own log lines would bury the story (the processes log to files).
    configure_logging(level="WARNING", service=settings.app.service_name, environment=settings.app.env.value)
    applied = await bootstrap.run_migrate(settings, create_database=True)
    print(f"migrations: {len(applied)} applied ({', '.join(applied) or 'already up to date'})")
    await bootstrap.run_topology(settings)
    print("topology: exchanges, quorum queues, retry tiers, DLQs and events.log declared")
    async with (
        _mail_sink(settings) as mail_sink,
        _process("sandbox", environ) as sandbox_process,
        # Both reconcile with the demo's settlement SLA: the web process for the admin API, the worker
        # on its schedule.
        _process("web", {**environ, **_WEB_ENVIRONMENT, **SETTLEMENT_ENVIRONMENT}) as web_process,
        _process("worker", {**environ, **SETTLEMENT_ENVIRONMENT}) as worker_process,
    ):
        base = f"http://{settings.web.host}:{settings.web.port}"
        processes = [sandbox_process, web_process, worker_process]
        healthy = await _wait_healthy(f"{base}/health", processes) and await _wait_healthy(
            f"http://{settings.sandbox.host}:{settings.sandbox.port}/_sandbox/clock", processes
        )
        results = await _check_health(base) if healthy else {}
        customers = the_days_customers()
        outcome = await _run_scenario(settings, base, customers) if healthy else None
        delivered = outcome is not None and await _events_published(settings, outcome.payment_ids)
        once = outcome is not None and await _webhooks_applied_once(settings, outcome.webhook_orders)
        ok = healthy and all(status == 200 for status in results.values()) and delivered and once
        ok = ok and outcome is not None and not outcome.problems
        _print_emails(mail_sink)
        _print_summary(settings, ok=ok, customer=customers[0].user_id)
        if serve and ok:
            print("\nserving; press Ctrl-C to stop")
            with contextlib.suppress(asyncio.CancelledError):
                await _wait_for_ctrl_c()
    return 0 if ok else 1


#: Where the demo's processes write their JSON logs (relative to the working directory).
LOG_DIRECTORY = Path("var/demo")


#: Where the demo's SMTP sink writes each email it receives (relative to the working directory).
MAIL_DIRECTORY = Path("var/mail")


@asynccontextmanager
async def _mail_sink(settings: Settings) -> AsyncIterator[SmtpSink | None]:
    """The development SMTP sink where SMTP_URL points (the worker sends there); None if not ours to run."""
    sink: SmtpSink | None = None
    try:
        sink = SmtpSink.for_url(SmtpUrl.parse(settings.smtp.url.get_secret_value()), MAIL_DIRECTORY)
        await sink.start()
    except ValueError as error:
        print(f"emails: no local SMTP sink ({error}); the worker sends to SMTP_URL")
        sink = None
    except OSError as error:
        # Most likely a sink of the developer's own (``payments smtp-sink``): the mail goes there.
        print(f"emails: no local SMTP sink ({error.strerror}); the mail goes to whatever listens there")
        sink = None
    try:
        yield sink
    finally:
        if sink is not None:
            await sink.stop()


def _print_emails(sink: SmtpSink | None) -> None:
    if sink is not None:
        print(
            f"\nemails: {len(sink.received)} messages in {MAIL_DIRECTORY}/"
            " (open the .eml files in any mail client)"
        )


def _open_log(command: str) -> BinaryIO:
    LOG_DIRECTORY.mkdir(parents=True, exist_ok=True)
    return (LOG_DIRECTORY / f"{command}.log").open("ab")


@asynccontextmanager
async def _process(command: str, environ: Mapping[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    """``payments <command>`` started from ``environ``."""
    with _open_log(command) as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "payments",
            command,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(environ),
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(url: str, processes: list[asyncio.subprocess.Process]) -> bool:
    deadline = asyncio.get_running_loop().time() + _START_DEADLINE_SECONDS
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            if any(process.returncode is not None for process in processes):
                print(f"a process exited during start-up; see {LOG_DIRECTORY}/*.log", file=sys.stderr)
                return False
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return True
            await asyncio.sleep(0.2)  # polling a process we do not control, with a deadline
    print(f"{url} did not answer within {_START_DEADLINE_SECONDS:.0f}s", file=sys.stderr)
    return False


async def _check_health(base: str) -> dict[str, int]:
    results: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for route in _HEALTH_ROUTES:
            async with session.get(base + route) as response:
                results[route] = response.status
                body = await response.json()
                print(f"GET {route} -> {response.status} {json.dumps(_brief(body))}")
    return results


def _brief(body: Mapping[str, Any]) -> Mapping[str, Any]:
    details = body.get("details")
    if isinstance(details, Mapping) and len(json.dumps(details)) > 160:
        return {**body, "details": f"{{{len(details)} entries}}"}
    return body


async def _run_scenario(settings: Settings, base: str, customers: Sequence[Customer]) -> Outcome:
    day_began = datetime.now(UTC)
    print("\ncustomers (each an account of their own, from an address of their own):")
    for customer in customers:
        print(f"  {customer.name:<12} {customer.user_id:<14} {customer.address}")
    # Settlements first: the scenario's refunds move the sandbox's clock on, and the reconciliation
    # run judges the settlement SLA by Cashfree's payment times against our clock.
    print(
        "\nsettlement and reconciliation"
        " (Cashfree settlement -> webhook -> SETTLED; reconciliation run -> report):"
    )
    settled = await run_settlement(settings, base, customers)
    print("\n".join(settled.lines))
    print("\npayments (API -> RabbitMQ -> payments agent -> Cashfree sandbox -> PostgreSQL):")
    outcome = await run_payment_scenario(settings, base, customers)
    print("\n".join(outcome.lines))
    outcome.payment_ids += settled.payment_ids
    outcome.problems += settled.problems
    print("\nfraud burst (API -> fraud screen on Redis tables -> refused at create -> admin alert):")
    burst = await run_fraud_burst(settings, base, day_began=day_began)
    print("\n".join(burst.lines))
    outcome.payment_ids += burst.payment_ids
    outcome.problems += burst.problems
    return outcome


async def _events_published(settings: Settings, payment_ids: list[str]) -> bool:
    """Wait until the worker's relay has published every event the demo's payments caused."""
    async with bootstrap.open_resources(settings, process="demo") as resources:
        deadline = asyncio.get_running_loop().time() + _START_DEADLINE_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            counts = await resources.pool.fetchrow(
                "SELECT count(*) AS events, count(*) FILTER (WHERE published_at IS NULL) AS waiting "
                "FROM outbox WHERE payload->>'paymentId' = ANY($1::text[])",
                payment_ids,
            )
            if counts and counts["events"] and not counts["waiting"]:
                print(f"\noutbox: all {counts['events']} events of these payments published to RabbitMQ")
                return True
            await asyncio.sleep(0.1)  # polling another process's progress, with a deadline
    print("outbox: the payments' events were not all published in time", file=sys.stderr)
    return False


async def _webhooks_applied_once(settings: Settings, order_ids: list[str]) -> bool:
    """Cashfree's deliveries versus the events we logged and applied: each event once."""
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox}/_sandbox/webhooks") as response:
        deliveries = [d for d in (await response.json())["deliveries"] if d["order_id"] in order_ids]
    sent = sum(len(delivery["attempts"]) for delivery in deliveries)
    # A duplicated delivery is a second delivery record of the same event (same idempotency key).
    events = {delivery["idempotency_key"] for delivery in deliveries}
    async with bootstrap.open_resources(settings, process="demo") as resources:
        logged = await resources.pool.fetch(
            "SELECT processing_status, count(*) AS n FROM webhook_logs "
            "WHERE order_id = ANY($1::text[]) GROUP BY 1",
            order_ids,
        )
    counts = {row["processing_status"]: row["n"] for row in logged}
    print(
        f"\nwebhooks: the sandbox made {sent} deliveries of {len(events)} events "
        f"(duplicated and reordered); webhook_logs holds {sum(counts.values())} events, {counts}"
    )
    return sum(counts.values()) == len(events) and set(counts) == {"SUCCESS"}


def _print_summary(settings: Settings, *, ok: bool, customer: str) -> None:
    base = f"http://{settings.web.host}:{settings.web.port}"
    print("\nCommDesk Payments is running:")
    print(f"  API and health     {base}/health  {base}/health/queues")
    print(f"  web metrics        {base}/metrics")
    print(f"  worker metrics     http://{settings.web.host}:{settings.worker.metrics_port}/metrics")
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
    print(f"  Cashfree sandbox   {sandbox}/pg  (control API: {sandbox}/_sandbox/)")
    print(f"  admin page         {base}/admin  (live alerts; paste an admin token)")
    print("  an admin token     .venv/bin/payments token --user admin --admin")
    print(f"  a customer token   .venv/bin/payments token --user {customer}")
    print(
        "  RabbitMQ           exchanges payment|webhook|email|analytics|command.exchange, stream events.log"
    )
    print(
        "  PostgreSQL         tables payments, transactions, webhook_logs, refunds, audit_logs, outbox,"
        " inbox, alerts, fraud_signals, settlements, reconciliation_runs, reconciliation_items"
    )
    print(f"\ndemo: {'all checks passed' if ok else 'FAILED'}")


async def _wait_for_ctrl_c() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

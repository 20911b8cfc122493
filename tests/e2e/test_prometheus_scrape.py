"""Prometheus scraping the running service, as in production: Debian's Prometheus on loopback scrapes
``payments web`` and ``payments worker`` (real processes, with the Cashfree sandbox), evaluates the
alert rules of ``docker/prometheus/alerts.yml``, and the series a few payments cause are read back
through its HTTP API, as the alerts and the Grafana dashboards will read them.

Each process writes its log to the test's directory; a failure shows their last lines.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp
import yaml

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.bridges.smtp.sink import SmtpSink
from payments.pipeline.settings import Settings, load_settings
from payments.web.auth import mint_token
from tests.grafana import dashboard_queries
from tests.observability import DOCKER
from tests.prometheus_server import (
    PrometheusApi,
    log_tail,
    require_prometheus,
    running_prometheus,
    scrape_config,
    terminate,
)
from tests.waiting import eventually

T = TypeVar("T")

ALERT_RULES: Final = DOCKER / "prometheus" / "alerts.yml"
APP_ID: Final = "prometheus-e2e-app"
SECRET: Final = "prometheus-e2e-cashfree-secret-0123456789"
#: The sandbox's test instruments (bridges/cashfree/sandbox/instruments.py).
SUCCEEDS: Final = "testsuccess@gocash"
FAILS: Final = "testfailure@gocash"
#: Starting three Python processes (migrated database, declared topology) on a loaded machine.
START_DEADLINE_SECONDS: Final = 60.0
#: Facts travel outbox -> analytics.events -> worker; queue gauges are polled every 10 s; scrapes
#: are 1 s apart.
SERIES_DEADLINE_SECONDS: Final = 60.0
#: Every rule is evaluated once a second; a few seconds after start each has been at least once.
RULES_DEADLINE_SECONDS: Final = 20.0
#: What ``lastEvaluation`` reads for a rule Prometheus has not evaluated yet.
NEVER: Final = "0001-01-01T00:00:00Z"

#: What four payments (three paid, one declined) must show through Prometheus: each expression has a
#: result exactly when the expectation holds.
EXPECTED: Final[Mapping[str, str]] = {
    "the web process is scraped": 'up{job="payments-web"} == 1',
    "the worker is scraped": 'up{job="payments-worker"} == 1',
    # Counted by the worker's analytics agent (agents/monitoring.py count_facts).
    "four payments created": 'sum(payments_payments_total{job="payments-worker", status="created"}) >= 4',
    "three payments succeeded": 'sum(payments_payments_total{job="payments-worker", status="success"}) >= 3',
    "one payment failed": 'sum(payments_payments_total{job="payments-worker", status="failed"}) >= 1',
    # The series the webhook-downtime and outbox alerts read, with exactly their labels.
    "creates timed by the web process": (
        'sum(payments_http_request_duration_seconds_count{job="payments-web",'
        ' route="/api/v1/payments/create", method="POST", status="201"}) >= 4'
    ),
    "webhooks accepted at ingest": (
        'sum(payments_webhooks_received_total{job="payments-web", outcome="accepted"}) > 0'
    ),
    "webhooks processed by the worker": (
        'sum(payments_webhook_processing_seconds_count{job="payments-worker"}) > 0'
    ),
    "the command queue's depth is polled": (
        'payments_queue_messages{job="payments-worker", queue="payments.commands"} >= 0'
    ),
    "the command queue has a consumer": (
        'payments_queue_consumers{job="payments-worker", queue="payments.commands"} >= 1'
    ),
    "agents' lag is timed": 'sum(payments_agent_lag_seconds_count{job="payments-worker"}) > 0',
    "the outbox backlog is reported": 'payments_outbox_backlog_events{job="payments-worker"} >= 0',
}


@dataclass
class Process:
    """A ``payments`` command running in the background, its output in ``log``."""

    command: str
    process: asyncio.subprocess.Process
    log: Path


@dataclass
class Running:
    """The service's processes and the URLs they answer on."""

    processes: list[Process]
    web_url: str
    worker_metrics_url: str
    sandbox_url: str
    #: Other logs a failure shows (Prometheus's, once it runs).
    other_logs: list[Path] = field(default_factory=list)

    def failure(self, message: str) -> str:
        """``message`` followed by the last lines of every log."""
        logs = [process.log for process in self.processes] + self.other_logs
        return "\n".join([message, *(log_tail(log) for log in logs)])

    def check_alive(self) -> None:
        for process in self.processes:
            if process.process.returncode is not None:
                raise AssertionError(f"payments {process.command} exited with {process.process.returncode}")


@asynccontextmanager
async def payments_process(
    command: str, environ: Mapping[str, str], directory: Path
) -> AsyncIterator[Process]:
    """``payments <command>`` started from ``environ``; stopped (SIGTERM, then SIGKILL) on exit."""
    log = directory / f"{command}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "payments",
            command,
            env=dict(environ),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield Process(command, process, log)
    finally:
        await terminate(process)


async def within(
    running: Running,
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    what: str,
    detail: Callable[[], str] = str,
) -> T:
    """``eventually(probe)``, at once failing if a process has exited; a failure shows ``detail()`` and
    the logs."""

    async def alive_and() -> T:
        running.check_alive()
        return await probe()

    try:
        return await eventually(alive_and, timeout=timeout, interval=0.2, what=what)
    except AssertionError as error:
        raise AssertionError(running.failure(f"{error}{detail()}")) from None


async def answers_200(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def service_environment(
    *,
    dsn: str,
    amqp_url: str,
    redis_url: str,
    smtp_url: str,
    web_port: int,
    worker_metrics_port: int,
    sandbox_port: int,
) -> dict[str, str]:
    """What the three processes run on: the test run's services, fast retries, no fraud rules."""
    web_url = f"http://127.0.0.1:{web_port}"
    return {
        **os.environ,
        "APP_ENV": "test",
        # Warnings and errors only: the access log of a scrape a second would bury them.
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": dsn,
        "RABBITMQ_URL": amqp_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_url,
        "HOST": "127.0.0.1",
        "PORT": str(web_port),
        "PUBLIC_BASE_URL": web_url,
        "PROMETHEUS_ENABLED": "true",
        "WORKER_METRICS_PORT": str(worker_metrics_port),
        "SANDBOX_HOST": "127.0.0.1",
        "SANDBOX_PORT": str(sandbox_port),
        "SANDBOX_WEBHOOK_URL": f"{web_url}/api/v1/webhooks/cashfree",
        "SANDBOX_ENFORCE_RATE_LIMITS": "false",
        "CASHFREE_BASE_URL": f"http://127.0.0.1:{sandbox_port}/pg",
        "CASHFREE_APP_ID": APP_ID,
        "CASHFREE_SECRET_KEY": SECRET,
        "RETRY_DELAY_SCALE": "0.001",
        "COMMAND_REPLY_TIMEOUT_SECONDS": "30",
        "FRAUD_RULES": "{}",
    }


@asynccontextmanager
async def running_service(environ: Mapping[str, str], directory: Path) -> AsyncIterator[Running]:
    """The sandbox, the web process and a worker, each answering 200 on its health route."""
    settings = load_settings(environ)
    host = settings.web.host
    running = Running(
        processes=[],
        web_url=f"http://{host}:{settings.web.port}",
        worker_metrics_url=f"http://{host}:{settings.worker.metrics_port}",
        sandbox_url=f"http://{settings.sandbox.host}:{settings.sandbox.port}",
    )
    async with AsyncExitStack() as stack:
        for command in ("sandbox", "web", "worker"):
            running.processes.append(
                await stack.enter_async_context(payments_process(command, environ, directory))
            )
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        )
        for url in (
            f"{running.sandbox_url}/_sandbox/clock",
            f"{running.web_url}/health",
            f"{running.worker_metrics_url}/health",
        ):
            await within(
                running,
                functools.partial(answers_200, session, url),
                timeout=START_DEADLINE_SECONDS,
                what=f"GET {url} -> 200",
            )
        yield running


async def drive_payments(settings: Settings, web_url: str, outcomes: Sequence[str]) -> list[str]:
    """One payment per upi id in ``outcomes``: created through the API, paid at the sandbox with that
    instrument, verified; the statuses verify answered."""

    async def one(session: aiohttp.ClientSession, cashfree: CashfreeClient, upi_id: str) -> str:
        user = f"user-prom-{uuid.uuid4().hex[:8]}"
        token = mint_token(settings.security, user_id=user, admin=False, now=datetime.now(UTC))

        def headers() -> dict[str, str]:
            return {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}

        body = {
            "amount": "499.00",
            "currency": "INR",
            "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
            "description": "CommDesk Pro",
        }
        async with session.post(f"{web_url}/api/v1/payments/create", json=body, headers=headers()) as created:
            payment = await created.json()
            assert created.status == 201, payment
        await cashfree.pay_order(
            OrderPayRequest(
                payment_session_id=payment["paymentSessionId"],
                payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id=upi_id)),
            ),
            attempt_key=uuid.uuid4().hex,
        )
        async with session.post(
            f"{web_url}/api/v1/payments/verify", json={"paymentId": payment["paymentId"]}, headers=headers()
        ) as verified:
            answer = await verified.json()
            assert verified.status == 200, answer
        return str(answer["status"])

    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        CashfreeClient(base_url=settings.cashfree.base_url, app_id=APP_ID, secret_key=SECRET) as cashfree,
    ):
        return list(await asyncio.gather(*(one(session, cashfree, upi_id) for upi_id in outcomes)))


async def unmet(prometheus: PrometheusApi, expected: Mapping[str, str]) -> dict[str, str]:
    """The expectations whose expression has no result yet (description -> expression)."""
    return {what: expr for what, expr in expected.items() if not await prometheus.query(expr)}


async def series_appear(running: Running, prometheus: PrometheusApi, expected: Mapping[str, str]) -> None:
    """Wait until every expression of ``expected`` has a result; a failure names those that have none."""
    missing = dict(expected)

    async def all_met() -> bool:
        nonlocal missing
        missing = await unmet(prometheus, missing)
        return not missing

    await within(
        running,
        all_met,
        timeout=SERIES_DEADLINE_SECONDS,
        what="the expected series",
        detail=lambda: f"; still unmet: {missing}",
    )


async def evaluated_rule_groups(running: Running, prometheus: PrometheusApi) -> list[dict[str, Any]]:
    """``/api/v1/rules``' groups once every rule in them has been evaluated at least once."""

    async def evaluated() -> list[dict[str, Any]]:
        """The groups, or none until every rule has been evaluated."""
        groups = await prometheus.rule_groups()
        rules = [rule for group in groups for rule in group["rules"]]
        return groups if all(rule["lastEvaluation"] != NEVER for rule in rules) else []

    return await within(running, evaluated, timeout=RULES_DEADLINE_SECONDS, what="every alert rule evaluated")


def alert_groups() -> dict[str, int]:
    """Group name -> number of rules, as ``alerts.yml`` declares them."""
    document = yaml.safe_load(ALERT_RULES.read_text())
    return {group["name"]: len(group["rules"]) for group in document["groups"]}


async def test_prometheus_scrapes_the_web_process_and_a_worker_and_reads_back_what_payments_did(
    migrated_dsn, amqp_url, redis_url, tmp_path, unused_tcp_port_factory
):
    require_prometheus()
    assert ALERT_RULES.is_file(), f"{ALERT_RULES} is missing"
    async with AsyncExitStack() as stack:
        mail = await stack.enter_async_context(SmtpSink())
        environ = service_environment(
            dsn=migrated_dsn,
            amqp_url=amqp_url,
            redis_url=redis_url,
            smtp_url=mail.url,
            web_port=unused_tcp_port_factory(),
            worker_metrics_port=unused_tcp_port_factory(),
            sandbox_port=unused_tcp_port_factory(),
        )
        running = await stack.enter_async_context(running_service(environ, tmp_path))
        targets = {"payments-web": running.web_url, "payments-worker": running.worker_metrics_url}
        config = scrape_config(
            {job: url.removeprefix("http://") for job, url in targets.items()}, rule_files=[ALERT_RULES]
        )
        running.other_logs.append(tmp_path / "prometheus" / "prometheus.log")
        prometheus = await stack.enter_async_context(
            running_prometheus(config, tmp_path / "prometheus", unused_tcp_port_factory())
        )

        statuses = await drive_payments(load_settings(environ), running.web_url, [SUCCEEDS] * 3 + [FAILS])
        assert statuses == ["SUCCESS"] * 3 + ["FAILED"], running.failure(f"verify answered {statuses}")

        # Every expected series, read back through the query API.
        await series_appear(running, prometheus, EXPECTED)

        # Both targets healthy, as Prometheus's own targets page shows them.
        health = {
            target["labels"]["job"]: (target["health"], target["lastError"])
            for target in await prometheus.active_targets()
        }
        assert health == {job: ("up", "") for job in targets}, running.failure(f"targets: {health}")

        # Every alert rule loaded, and evaluated without an error.
        groups = await evaluated_rule_groups(running, prometheus)
        loaded = {group["name"]: len(group["rules"]) for group in groups}
        assert loaded == alert_groups(), running.failure(f"rule groups loaded: {loaded}")
        failing = {
            rule["name"]: (rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        }
        assert not failing, running.failure(f"rules failing evaluation: {failing}")

        # Every Grafana panel query evaluates (an empty result is fine: no refunds were made).
        queries = dashboard_queries()
        assert queries, "tests.grafana found no dashboard queries"
        answers = {key: await prometheus.evaluate(expr) for key, expr in queries.items()}
        refused = {
            key: f"{answer.get('errorType')}: {answer.get('error')} in {queries[key]!r}"
            for key, answer in answers.items()
            if answer.get("status") != "success"
        }
        assert not refused, running.failure(f"dashboard queries Prometheus refused: {refused}")

"""Prometheus scraping the running service, as in production: Debian's Prometheus on loopback scrapes
``payments web`` and ``payments worker`` (real processes, with the Cashfree sandbox), evaluates the
alert rules of ``docker/prometheus/alerts.yml``, and the series a few payments cause are read back
through its HTTP API, as the alerts and the Grafana dashboards will read them.

The processes are ``tests/service_processes.py``'s; each writes its log to the test's directory, and a
failure shows their last lines (and Prometheus's).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import yaml

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.pipeline.settings import Settings
from payments.web.auth import mint_token
from tests.grafana import dashboard_queries
from tests.observability import DOCKER
from tests.prometheus_server import PrometheusApi, require_prometheus, running_prometheus, scrape_config
from tests.service_processes import Service, ServicePorts, running_service, service_environment

ALERT_RULES: Final = DOCKER / "prometheus" / "alerts.yml"
APP_ID: Final = "prometheus-e2e-app"
SECRET: Final = "prometheus-e2e-cashfree-secret-0123456789"
#: The sandbox's test instruments (bridges/cashfree/sandbox/instruments.py).
SUCCEEDS: Final = "testsuccess@gocash"
FAILS: Final = "testfailure@gocash"
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


async def series_appear(service: Service, prometheus: PrometheusApi, expected: Mapping[str, str]) -> None:
    """Wait until every expression of ``expected`` has a result; a failure names those that have none."""
    missing = dict(expected)

    async def all_met() -> bool:
        nonlocal missing
        missing = await unmet(prometheus, missing)
        return not missing

    await service.within(
        all_met,
        timeout=SERIES_DEADLINE_SECONDS,
        what="the expected series",
        detail=lambda: f"; still unmet: {missing}",
    )


async def evaluated_rule_groups(service: Service, prometheus: PrometheusApi) -> list[dict[str, Any]]:
    """``/api/v1/rules``' groups once every rule in them has been evaluated at least once."""

    async def evaluated() -> list[dict[str, Any]]:
        """The groups, or none until every rule has been evaluated."""
        groups = await prometheus.rule_groups()
        rules = [rule for group in groups for rule in group["rules"]]
        return groups if all(rule["lastEvaluation"] != NEVER for rule in rules) else []

    return await service.within(evaluated, timeout=RULES_DEADLINE_SECONDS, what="every alert rule evaluated")


def alert_groups() -> dict[str, int]:
    """Group name -> number of rules, as ``alerts.yml`` declares them."""
    document = yaml.safe_load(ALERT_RULES.read_text())
    return {group["name"]: len(group["rules"]) for group in document["groups"]}


async def test_prometheus_scrapes_the_web_process_and_a_worker_and_reads_back_what_payments_did(
    migrated_dsn, amqp_url, redis_url, tmp_path, unused_tcp_port_factory
):
    require_prometheus()
    assert ALERT_RULES.is_file(), f"{ALERT_RULES} is missing"
    environ = service_environment(
        dsn=migrated_dsn,
        amqp_url=amqp_url,
        redis_url=redis_url,
        ports=ServicePorts.free(unused_tcp_port_factory),
        cashfree_app_id=APP_ID,
        cashfree_secret=SECRET,
    )
    async with AsyncExitStack() as stack:
        service = stack.enter_context(running_service(environ, tmp_path))
        await service.ready()
        targets = {"payments-web": service.web_url, "payments-worker": service.worker_metrics_url}
        config = scrape_config(
            {job: url.removeprefix("http://") for job, url in targets.items()}, rule_files=[ALERT_RULES]
        )
        service.logs.append(tmp_path / "prometheus" / "prometheus.log")
        prometheus = await stack.enter_async_context(
            running_prometheus(config, tmp_path / "prometheus", unused_tcp_port_factory())
        )

        statuses = await drive_payments(service.settings, service.web_url, [SUCCEEDS] * 3 + [FAILS])
        assert statuses == ["SUCCESS"] * 3 + ["FAILED"], service.failure(f"verify answered {statuses}")

        # Every expected series, read back through the query API.
        await series_appear(service, prometheus, EXPECTED)

        # Both targets healthy, as Prometheus's own targets page shows them.
        health = {
            target["labels"]["job"]: (target["health"], target["lastError"])
            for target in await prometheus.active_targets()
        }
        assert health == {job: ("up", "") for job in targets}, service.failure(f"targets: {health}")

        # Every alert rule loaded, and evaluated without an error.
        groups = await evaluated_rule_groups(service, prometheus)
        loaded = {group["name"]: len(group["rules"]) for group in groups}
        assert loaded == alert_groups(), service.failure(f"rule groups loaded: {loaded}")
        failing = {
            rule["name"]: (rule["health"], rule.get("lastError", ""))
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        }
        assert not failing, service.failure(f"rules failing evaluation: {failing}")

        # Every Grafana panel query evaluates (an empty result is fine: no refunds were made).
        queries = dashboard_queries()
        assert queries, "tests.grafana found no dashboard queries"
        answers = {key: await prometheus.evaluate(expr) for key, expr in queries.items()}
        refused = {
            key: f"{answer.get('errorType')}: {answer.get('error')} in {queries[key]!r}"
            for key, answer in answers.items()
            if answer.get("status") != "success"
        }
        assert not refused, service.failure(f"dashboard queries Prometheus refused: {refused}")

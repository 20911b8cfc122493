"""Alertmanager's intake: its own token, its payload checked, each alert raised once per episode."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from payments.domain.alerts.model import Severity
from payments.domain.errors import ValidationFailed
from payments.pipeline.settings import load_settings
from payments.web.alertmanager import IntakeOptions, alertmanager_routes, parse_notification
from payments.web.auth import ALERTMANAGER_PATH, mint_token
from tests.fakes.storage import InMemoryStore
from tests.unit._web_support import build_app

TOKEN = "alertmanager-test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def prometheus_alert(status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "PaymentsDeadLetterGrowth",
            "severity": "critical",
            "team": "payments",
            **labels,
        },
        "annotations": {
            "summary": "Messages are reaching payments.commands.dlq",
            "description": "3 messages dead-lettered in 15m",
            "runbook_url": "docs/runbook.md#paymentsdeadlettergrowth",
        },
        "startsAt": "2026-11-26T10:00:00.000Z",
        "endsAt": "2026-11-26T10:20:00.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "fingerprint": "a1b2c3d4e5f60718",
    }


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="PaymentsDeadLetterGrowth"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "payments-admin",
        "groupLabels": {"alertname": "PaymentsDeadLetterGrowth"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


class Intake:
    def __init__(self, *, token: str | None = TOKEN) -> None:
        self.store = InMemoryStore()
        self.registry = CollectorRegistry()
        environ = {"ALERTMANAGER_TOKEN": token} if token else {}
        routes = alertmanager_routes(
            unit_of_work=self.store.unit_of_work, options=IntakeOptions(cooldown=timedelta(minutes=15))
        )
        self.app = build_app(settings=load_settings(environ), routes=routes, registry=self.registry)

    def alerts(self) -> list[Any]:
        stored = sorted(self.store.alert_tables.alerts.values(), key=lambda s: s.sequence)
        return [entry.alert for entry in stored]

    def mailed(self) -> list[str]:
        return [event.routing_key for event in self.store.outbox_events.values()]

    def counted(self, status: str, outcome: str) -> float:
        labels = {"status": status, "outcome": outcome}
        return self.registry.get_sample_value("payments_alertmanager_notifications_total", labels) or 0.0


@pytest.fixture
def intake() -> Intake:
    return Intake()


async def test_a_firing_alert_becomes_a_stored_admin_alert_that_is_mailed(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)

    response = await client.post(
        ALERTMANAGER_PATH, json=notification(prometheus_alert(queue="payments.commands.dlq")), headers=BEARER
    )

    assert response.status == 200
    assert await response.json() == {"received": 1, "raised": 1}
    [alert] = intake.alerts()
    assert (alert.kind, alert.subject, alert.severity) == (
        "PaymentsDeadLetterGrowth",
        "queue=payments.commands.dlq",
        Severity.CRITICAL,
    )
    assert alert.title == "Messages are reaching payments.commands.dlq"
    assert alert.source == "alertmanager"
    assert alert.details["runbook"] == "docs/runbook.md#paymentsdeadlettergrowth"
    assert alert.raised_at.isoformat() == "2026-11-26T10:00:00+00:00"
    assert intake.mailed() == ["email.admin.alert"]
    assert intake.counted("firing", "raised") == 1


async def test_a_repeated_notification_of_one_episode_stores_nothing_new(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)
    body = notification(prometheus_alert(queue="payments.commands.dlq"))

    first = await client.post(ALERTMANAGER_PATH, json=body, headers=BEARER)
    again = await client.post(ALERTMANAGER_PATH, json=body, headers=BEARER)

    assert (first.status, again.status) == (200, 200)
    assert (await again.json())["raised"] == 0
    assert len(intake.alerts()) == 1
    assert intake.mailed() == ["email.admin.alert"]
    assert intake.counted("firing", "cooled_down") == 1


async def test_a_resolved_alert_is_announced_as_resolved_at_its_end(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)
    firing = prometheus_alert(queue="payments.commands.dlq")
    resolved = prometheus_alert("resolved", queue="payments.commands.dlq")

    await client.post(ALERTMANAGER_PATH, json=notification(firing), headers=BEARER)
    await client.post(ALERTMANAGER_PATH, json=notification(resolved), headers=BEARER)

    [_, ended] = intake.alerts()
    assert ended.kind == "PaymentsDeadLetterGrowth.resolved"
    assert ended.severity is Severity.INFO
    assert ended.title.startswith("Resolved: ")
    assert ended.raised_at.isoformat() == "2026-11-26T10:20:00+00:00"
    assert intake.counted("resolved", "raised") == 1


async def test_every_alert_of_a_group_is_raised_with_its_own_subject(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)
    group = notification(
        prometheus_alert(queue="payments.commands.dlq"), prometheus_alert(queue="refunds.commands.dlq")
    )

    response = await client.post(ALERTMANAGER_PATH, json=group, headers=BEARER)

    assert (await response.json()) == {"received": 2, "raised": 2}
    assert sorted(alert.subject for alert in intake.alerts()) == [
        "queue=payments.commands.dlq",
        "queue=refunds.commands.dlq",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-wrong-token-00"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
async def test_without_the_intake_token_nothing_is_stored(aiohttp_client, intake, headers):
    client = await aiohttp_client(intake.app)

    response = await client.post(ALERTMANAGER_PATH, json=notification(prometheus_alert()), headers=headers)

    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_token"
    assert intake.alerts() == []


async def test_an_admin_jwt_is_not_the_intake_token(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)
    settings = load_settings({"ALERTMANAGER_TOKEN": TOKEN})
    jwt = mint_token(settings.security, user_id="ops", admin=True, now=datetime.now(UTC))

    response = await client.post(
        ALERTMANAGER_PATH, json=notification(prometheus_alert()), headers={"Authorization": f"Bearer {jwt}"}
    )

    assert response.status == 401


async def test_with_no_token_configured_every_call_is_refused(aiohttp_client):
    intake = Intake(token=None)
    client = await aiohttp_client(intake.app)

    response = await client.post(ALERTMANAGER_PATH, json=notification(prometheus_alert()), headers=BEARER)

    assert response.status == 401
    assert intake.alerts() == []


def _broken(change: str) -> dict[str, Any]:
    body = notification(prometheus_alert())
    alert = body["alerts"][0]
    if change == "version":
        body["version"] = "3"
    elif change == "no alerts":
        body["alerts"] = []
    elif change == "status":
        alert["status"] = "pending"
    elif change == "label name":
        alert["labels"]["bad-name"] = "x"
    elif change == "naive time":
        alert["startsAt"] = "2026-11-26T10:00:00"
    return body


@pytest.mark.parametrize("change", ["version", "no alerts", "status", "label name", "naive time"])
async def test_a_malformed_notification_is_refused_with_400_and_stores_nothing(
    aiohttp_client, intake, change
):
    client = await aiohttp_client(intake.app)

    response = await client.post(ALERTMANAGER_PATH, json=_broken(change), headers=BEARER)

    assert response.status == 400
    assert intake.alerts() == []


async def test_a_body_that_is_not_json_is_refused(aiohttp_client, intake):
    client = await aiohttp_client(intake.app)

    response = await client.post(ALERTMANAGER_PATH, data=b"{not json", headers=BEARER)

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"


def test_fields_alertmanager_adds_in_later_releases_are_ignored():
    body = copy.deepcopy(notification(prometheus_alert()))
    body["alerts"][0]["silencedBy"] = []
    body["newTopLevelField"] = {"x": 1}

    assert parse_notification(json.dumps(body).encode()).alerts[0].name == "PaymentsDeadLetterGrowth"


@pytest.mark.parametrize(
    "change",
    [
        {"labels": {"alertname": "X", "queue": "a\u0000b"}},
        {"annotations": {"summary": "nul \u0000 inside"}},
        {"fingerprint": "ab\u0000cd"},
        {"generatorURL": "http://prometheus:9090/\u0000"},
        {"startsAt": "0001-01-01T00:00:00+05:00"},
        {"startsAt": "9999-12-31T23:00:00-05:00"},
        {"startsAt": "0001-01-01T00:00:00Z"},
    ],
    ids=[
        "nul-label",
        "nul-annotation",
        "nul-fingerprint",
        "nul-generator-url",
        "before-year-1-in-utc",
        "after-9999-in-utc",
        "go-zero-time",
    ],
)
def test_what_the_database_cannot_hold_is_refused_as_bad_input(change):
    body = notification({**prometheus_alert(), **change})

    with pytest.raises(ValidationFailed):
        parse_notification(json.dumps(body).encode())


def test_an_end_that_is_no_time_reads_as_no_end():
    resolved = {**prometheus_alert("resolved"), "endsAt": "0001-01-01T00:00:00Z"}

    [alert] = parse_notification(json.dumps(notification(resolved)).encode()).alerts

    assert alert.ends_at is None

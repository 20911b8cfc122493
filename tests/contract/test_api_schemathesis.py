"""Schemathesis against our own OpenAPI document (``src/payments/web/openapi.yaml``) and the live
product: ``payments web`` and ``payments worker`` on the real PostgreSQL, Redis and RabbitMQ, with the
Cashfree sandbox and an SMTP sink (``live_stack``). Generated requests to every operation get no
server error and no answer the document does not describe (status, content type, body, headers).

Generated ids almost never name anything, so the success answers of reads by id are checked on
resources the module creates first (``seed``: a paid payment with its invoice and a refund, a
reconciliation run, an alert), through the same checks (``KNOWN``); ``EDGES`` are inputs generation
seldom reaches. Generated webhook bodies are signed as Cashfree would sign them, so they reach the
parser instead of stopping at 401.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NotSet

from payments.bridges.cashfree.signature import sign
from payments.web.admin_alerts import STREAM_PATH
from payments.web.auth import ALERTMANAGER_PATH, API_PREFIX, UNAUTHENTICATED_PREFIXES, mint_token
from payments.web.openapi import openapi_document
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH
from tests.contract.live_stack import (
    ADMIN,
    ALERTMANAGER_TOKEN,
    CASHFREE_SECRET,
    NOTIFICATION,
    OWNER,
    Seeded,
    finished_webhook,
    live_stack,
    seed,
    stack_environment,
)
from tests.service_processes import Service, ServicePorts

# The alert stream never ends: a generated request to it would wait for ever. It is left out of the
# generated set; test_the_alert_stream_answers_as_documented reads its first frame instead.
SCHEMA = schemathesis.openapi.from_dict(openapi_document()).exclude(path=STREAM_PATH, method="GET")
CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass(frozen=True)
class Live:
    stack: Service
    seeded: Seeded
    dsn: str

    def token(self, user_id: str, *, admin: bool) -> str:
        return mint_token(self.stack.settings.security, user_id=user_id, admin=admin, now=datetime.now(UTC))


@pytest.fixture(scope="module")
def live(migrated_dsn, amqp_url, redis_url, unused_tcp_port_factory, tmp_path_factory) -> Iterator[Live]:
    ports = ServicePorts.free(unused_tcp_port_factory)
    environ = stack_environment(dsn=migrated_dsn, amqp_url=amqp_url, redis_url=redis_url, ports=ports)
    with live_stack(environ, tmp_path_factory.mktemp("api-schemathesis")) as stack:
        try:
            seeded = asyncio.run(seed(stack))
        except AssertionError as error:
            raise AssertionError(stack.failure(f"seeding failed: {error}")) from None
        yield Live(stack, seeded, migrated_dsn)


def credentials(live: Live, path: str, role: str = "admin") -> dict[str, str]:
    """What a caller of ``path`` sends. ``admin``, the default: the Alertmanager token to the intake,
    an admin JWT to the other API routes (admins may read and do everything), nothing to webhooks
    and the routes outside the API. ``user``: the payment owner's JWT; ``jwt``: an admin JWT
    wherever it goes; ``none``: nothing."""
    if role == "user":
        return {"Authorization": f"Bearer {live.token(OWNER, admin=False)}"}
    if role == "jwt":
        return {"Authorization": f"Bearer {live.token(ADMIN, admin=True)}"}
    if role == "none" or path.startswith(UNAUTHENTICATED_PREFIXES) or not path.startswith(API_PREFIX):
        return {}
    if path == ALERTMANAGER_PATH:
        return {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}
    return {"Authorization": f"Bearer {live.token(ADMIN, admin=True)}"}


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_server_error_and_answers_the_document_describes(case, live):
    if case.operation.path == CASHFREE_WEBHOOK_PATH and "x-webhook-signature" in (case.headers or {}):
        sign_as_cashfree(case)  # cases generated without a signature still test the 401
    case.call_and_validate(
        base_url=live.stack.web_url, headers=credentials(live, case.operation.path), checks=CHECKS
    )


def test_every_documented_operation_but_the_stream_is_generated():
    documented = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    tested = {(op.ok().method.upper(), op.ok().path) for op in SCHEMA.get_all_operations()}

    assert tested == documented - {("GET", STREAM_PATH)}


@dataclass(frozen=True)
class Known:
    """One request on a seeded resource, and the status it must get."""

    method: str
    path: str
    status: int
    role: str = "admin"
    parts: Mapping[str, Any] = field(default_factory=dict)


def _payment(path: str) -> Callable[[Seeded], Known]:
    return lambda s: Known("GET", path, 200, parts={"path_parameters": {"paymentId": s.payment_id}})


def _run(suffix: str, method: str = "GET", status: int = 200) -> Callable[[Seeded], Known]:
    path = f"/api/v1/admin/reconciliation/runs/{{runId}}{suffix}"
    return lambda s: Known(method, path, status, parts={"path_parameters": {"runId": s.run_id}})


def _write(path: str, body: Mapping[str, Any], status: int) -> Known:
    return Known(
        "POST", path, status, parts={"body": dict(body), "headers": {"Idempotency-Key": uuid.uuid4().hex}}
    )


#: name -> the request on seeded resources; each answer must have the status and pass every check.
KNOWN: Final[Mapping[str, Callable[[Seeded], Known]]] = {
    "a payment": _payment("/api/v1/payments/{paymentId}"),
    "its invoice": _payment("/api/v1/payments/{paymentId}/invoice"),
    "its refunds": _payment("/api/v1/refunds/payment/{paymentId}"),
    "its status by order": lambda s: Known(
        "GET", "/api/v1/payments/status/{orderId}", 200, parts={"path_parameters": {"orderId": s.order_id}}
    ),
    "its owner's history": lambda s: Known(
        "GET", "/api/v1/payments/history", 200, role="user", parts={"query": {"limit": 5}}
    ),
    "a refund": lambda s: Known(
        "GET", "/api/v1/refunds/{refundId}", 200, parts={"path_parameters": {"refundId": s.refund_id}}
    ),
    "a verify of a paid payment": lambda s: _write(
        "/api/v1/payments/verify", {"paymentId": s.payment_id}, 200
    ),
    "another partial refund": lambda s: _write(
        "/api/v1/refunds/initiate", {"paymentId": s.payment_id, "amount": "1.00", "reason": "goodwill"}, 201
    ),
    "a refund beyond the balance": lambda s: _write(
        "/api/v1/refunds/initiate", {"paymentId": s.payment_id, "amount": "499.00", "reason": "too much"}, 400
    ),
    "a user at an admin route": lambda s: Known("GET", "/api/v1/admin/dlq", 403, role="user"),
    "an unsigned webhook": lambda s: Known("POST", CASHFREE_WEBHOOK_PATH, 401, parts={"body": {"data": {}}}),
    "no token": lambda s: Known("GET", "/api/v1/payments/history", 401, role="none"),
    "an admin JWT at the Alertmanager intake": lambda s: Known(
        "POST", ALERTMANAGER_PATH, 401, role="jwt", parts={"body": NOTIFICATION}
    ),
    "a dead-letter queue": lambda s: Known(
        "GET", "/api/v1/admin/dlq/{queue}", 200, parts={"path_parameters": {"queue": "payments.commands"}}
    ),
    "a re-drive of all": lambda s: Known(
        "POST",
        "/api/v1/admin/dlq/{queue}/redrive",
        200,
        parts={"path_parameters": {"queue": "payments.commands"}, "body": {"all": True}},
    ),
    "the stored alerts": lambda s: Known("GET", "/api/v1/admin/alerts", 200),
    "a reconciliation run": _run(""),
    "its JSON report": _run("/report.json"),
    "its CSV report": _run("/report.csv"),
    "its re-run": _run("/rerun", "POST", 201),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_seeded_resources_are_answered_as_the_document_describes(name, live):
    known = KNOWN[name](live.seeded)
    case = SCHEMA[known.path][known.method].Case(**known.parts)
    headers = credentials(live, known.path, known.role)

    response = case.call_and_validate(base_url=live.stack.web_url, headers=headers, checks=CHECKS)

    assert response.status_code == known.status, response.text


def _alert_with(**changes: Any) -> dict[str, Any]:
    return {**NOTIFICATION, "alerts": [{**NOTIFICATION["alerts"][0], **changes}]}


#: Inputs at edges generation seldom reaches: times that leave the representable range once moved to
#: UTC (or to the end of their day), and NUL, which PostgreSQL cannot store. Each must be refused or
#: served as the document says; none may be a server error.
EDGES: Final[Mapping[str, tuple[str, str, Mapping[str, Any]]]] = {
    "history from year 1 east of UTC": (
        "GET",
        "/api/v1/payments/history",
        {"query": {"from": "0001-01-01T00:00:00+05:00"}},
    ),
    "history to the last day of year 9999": (
        "GET",
        "/api/v1/payments/history",
        {"query": {"to": "9999-12-31"}},
    ),
    "history cursor at year 1 east of UTC": (
        "GET",
        "/api/v1/payments/history",
        {
            "query": {"cursor": "MDAwMS0wMS0wMVQwMDowMDowMCswNTowMHxwYXlfMQ"}
        },  # "0001-01-01T00:00:00+05:00|pay_1"
    ),
    "a run over the first days of year 1": (
        "POST",
        "/api/v1/admin/reconciliation/runs",
        {"body": {"from": "0001-01-01", "to": "0001-01-05"}},
    ),
    "a run at the end of year 9999 west of UTC": (
        "POST",
        "/api/v1/admin/reconciliation/runs",
        {"body": {"from": "9999-12-31T00:00:00-05:00", "to": "9999-12-31T23:00:00-05:00"}},
    ),
    "an alert starting in year 1 east of UTC": (
        "POST",
        ALERTMANAGER_PATH,
        {"body": _alert_with(startsAt="0001-01-01T00:00:00+05:00")},
    ),
    "an alert with NUL in a label": (
        "POST",
        ALERTMANAGER_PATH,
        {"body": _alert_with(labels={"alertname": "SchemathesisProbe", "queue": "a\u0000b"})},
    ),
    "an alert with NUL in an annotation": (
        "POST",
        ALERTMANAGER_PATH,
        # Its own alertname: the seeded alert's cooldown would store nothing, NUL or not.
        {"body": _alert_with(labels={"alertname": "NulProbe"}, annotations={"description": "a\u0000b"})},
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_edge_inputs_are_answered_as_the_document_describes(name, live):
    method, path, parts = EDGES[name]
    case = SCHEMA[path][method].Case(**parts)

    case.call_and_validate(base_url=live.stack.web_url, headers=credentials(live, path), checks=CHECKS)


def test_a_finished_webhook_is_reprocessed_as_the_document_describes(live):
    webhook_id = asyncio.run(finished_webhook(live.dsn))
    case = SCHEMA["/api/v1/admin/webhooks/{webhookId}/reprocess"]["POST"].Case(
        path_parameters={"webhookId": webhook_id}
    )

    response = case.call_and_validate(
        base_url=live.stack.web_url, headers=credentials(live, case.operation.path), checks=CHECKS
    )

    assert response.status_code == 202, response.text


def test_a_signed_webhook_is_accepted_once_then_known_as_a_duplicate(live):
    event = {"type": "SCHEMATHESIS_PROBE", "event_time": datetime.now(UTC).isoformat(), "data": {}}
    key = uuid.uuid4().hex
    statuses = []
    for _ in range(2):
        case = SCHEMA[CASHFREE_WEBHOOK_PATH]["POST"].Case(body=event, headers={"x-idempotency-key": key})
        sign_as_cashfree(case)
        response = case.call_and_validate(base_url=live.stack.web_url, checks=CHECKS)
        statuses.append((response.status_code, response.json()))

    assert statuses == [(200, {"status": "accepted"}), (200, {"status": "duplicate"})]


def test_a_signed_body_that_is_no_cashfree_event_is_refused_as_documented(live):
    case = SCHEMA[CASHFREE_WEBHOOK_PATH]["POST"].Case(body=b"[1, 2]", headers={})
    sign_as_cashfree(case)

    response = case.call_and_validate(base_url=live.stack.web_url, checks=CHECKS)

    assert (response.status_code, response.json()["error"]["code"]) == (400, "malformed_webhook")


def test_the_alert_stream_answers_as_documented(live):
    documented = openapi_document()["paths"][STREAM_PATH]["get"]
    assert set(documented["responses"]["200"]["content"]) == {"text/event-stream"}
    assert {"401", "403"} <= set(documented["responses"])

    status, content_type, first = asyncio.run(first_frame(live))

    assert (status, content_type) == (200, "text/event-stream")
    assert first == b"retry: 3000\n\n"


def sign_as_cashfree(case: Any) -> None:
    """Give a webhook case the headers Cashfree would send with its exact body, signed now."""
    if isinstance(case.body, NotSet):
        return
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    timestamp = str(time.time_ns() // 1_000_000)
    case.body = body
    case.headers["x-webhook-timestamp"] = timestamp
    case.headers["x-webhook-signature"] = sign(CASHFREE_SECRET, timestamp, body)


async def first_frame(live: Live) -> tuple[int, str, bytes]:
    """Status, content type and first frame of the alert stream; the connection is then dropped."""
    headers = credentials(live, STREAM_PATH)
    async with (
        aiohttp.ClientSession(live.stack.web_url, timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(STREAM_PATH, headers=headers) as response,
    ):
        return response.status, response.content_type, await response.content.readuntil(b"\n\n")

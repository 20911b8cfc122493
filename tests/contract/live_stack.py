"""The product as it runs in production, for schemathesis (its calls block, so it cannot share a test's
event loop): the service's processes (``tests/service_processes.py``) on the test run's PostgreSQL,
Redis and RabbitMQ, with what this suite needs of them: the Alertmanager intake's token, no rate
limits, a short wait for command replies. ``live_stack`` yields once every process answers and the
command queues have consumers; ``seed`` then makes the resources the known cases read, through the API
as a client would.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import aiohttp
import asyncpg

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.web.auth import ALERTMANAGER_PATH, mint_token
from tests.service_processes import Service, ServicePorts, running_service, service_environment
from tests.waiting import eventually

CASHFREE_APP_ID: Final = "schemathesis-api-app"
CASHFREE_SECRET: Final = "schemathesis-api-cashfree-secret-0123456789"
ALERTMANAGER_TOKEN: Final = "schemathesis-alertmanager-token-0123456789"
ADMIN: Final = "schemathesis-admin"
OWNER: Final = "schemathesis-owner"
#: The sandbox's test instrument that pays (bridges/cashfree/sandbox/instruments.py).
SUCCEEDS: Final = "testsuccess@gocash"
#: The worker issues an invoice, and processes the payment's webhooks, shortly after the payment.
WORKER_DEADLINE_SECONDS: Final = 30.0
CREATE_BODY: Final = {
    "amount": "499.00",
    "currency": "INR",
    "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
    "description": "CommDesk Pro",
}
NOTIFICATION: Final = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "SchemathesisProbe", "severity": "warning", "queue": "payments.commands"},
            "annotations": {"summary": "A probe of the intake"},
            "startsAt": "2026-01-01T00:00:00Z",
        }
    ],
}


def stack_environment(*, dsn: str, amqp_url: str, redis_url: str, ports: ServicePorts) -> dict[str, str]:
    """The service's environment, with the Alertmanager intake's token, no rate limits and a short wait
    for command replies."""
    return service_environment(
        dsn=dsn,
        amqp_url=amqp_url,
        redis_url=redis_url,
        ports=ports,
        cashfree_app_id=CASHFREE_APP_ID,
        cashfree_secret=CASHFREE_SECRET,
        ALERTMANAGER_TOKEN=ALERTMANAGER_TOKEN,
        COMMAND_REPLY_TIMEOUT_SECONDS="5",
        RATE_LIMITS_ENABLED="false",
    )


@contextmanager
def live_stack(environ: Mapping[str, str], directory: Path) -> Iterator[Service]:
    """The service's processes, started from ``environ`` and ready, until the block ends."""
    with running_service(environ, directory) as service:
        asyncio.run(service.ready())
        yield service


@dataclass(frozen=True)
class Seeded:
    """What ``seed`` made: resources the known cases read."""

    payment_id: str
    order_id: str
    refund_id: str
    run_id: str


async def seed(stack: Service) -> Seeded:
    """A payment paid at the sandbox, verified, partly refunded and invoiced; a reconciliation run;
    an alert from the Alertmanager intake."""
    security = stack.settings.security
    now = datetime.now(UTC)
    owner = mint_token(security, user_id=OWNER, admin=False, now=now)
    admin = mint_token(security, user_id=ADMIN, admin=True, now=now)
    async with (
        aiohttp.ClientSession(stack.web_url, timeout=aiohttp.ClientTimeout(total=30)) as api,
        CashfreeClient(base_url=stack.cashfree_url, app_id=CASHFREE_APP_ID, secret_key=CASHFREE_SECRET) as cf,
    ):
        payment = await _call(api, "POST", "/api/v1/payments/create", owner, CREATE_BODY, status=201)
        pay = UpiPaymentMethod(upi=Upi(channel="collect", upi_id=SUCCEEDS))
        await cf.pay_order(
            OrderPayRequest(payment_session_id=payment["paymentSessionId"], payment_method=pay),
            attempt_key=uuid.uuid4().hex,
        )
        verify = {"paymentId": payment["paymentId"]}
        verified = await _call(api, "POST", "/api/v1/payments/verify", owner, verify, status=200)
        assert verified["status"] == "SUCCESS", verified
        refund_body = {"paymentId": payment["paymentId"], "amount": "100.00", "reason": "customer asked"}
        refund = await _call(api, "POST", "/api/v1/refunds/initiate", owner, refund_body, status=201)
        today = now.date()
        window = {"from": str(today - timedelta(days=2)), "to": str(today + timedelta(days=1))}
        run = await _call(api, "POST", "/api/v1/admin/reconciliation/runs", admin, window, status=201)
        intake = f"Bearer {ALERTMANAGER_TOKEN}"
        async with api.post(ALERTMANAGER_PATH, json=NOTIFICATION, headers={"Authorization": intake}) as r:
            assert r.status == 200, await r.text()
        invoice = f"/api/v1/payments/{payment['paymentId']}/invoice"
        await eventually(
            lambda: _status_is(api, invoice, owner, 200),
            timeout=WORKER_DEADLINE_SECONDS,
            what="the invoice to be issued",
        )
    return Seeded(payment["paymentId"], payment["orderId"], refund["refundId"], run["run"]["runId"])


async def _call(
    api: aiohttp.ClientSession, method: str, path: str, token: str, body: Any, *, status: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with api.request(method, path, json=body, headers=headers) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == status, f"{method} {path} -> {response.status}: {answer}"
        return answer


async def _status_is(api: aiohttp.ClientSession, path: str, token: str, status: int) -> bool:
    async with api.get(path, headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status == status


async def finished_webhook(dsn: str) -> int:
    """The id of a stored webhook the worker has finished with (only those may be queued again)."""
    connection = await asyncpg.connect(dsn)
    try:
        query = "SELECT min(id) FROM webhook_logs WHERE processing_status = 'SUCCESS'"
        found = await eventually(
            lambda: connection.fetchval(query), timeout=WORKER_DEADLINE_SECONDS, what="a processed webhook"
        )
        return int(found)
    finally:
        await connection.close()

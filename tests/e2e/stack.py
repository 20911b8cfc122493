"""The assembled product in one test process: the Cashfree sandbox on a loopback port, the web app,
and a worker running every flow, all on the real PostgreSQL, Redis and RabbitMQ of the test run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox
from payments.bridges.cashfree.signature import sign
from payments.bridges.smtp.sink import SmtpSink
from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.settings import Settings, load_settings
from payments.web.auth import mint_token

APP_ID = "e2e-app"
SECRET = "e2e-cashfree-secret-0123456789"
#: Every bearer token the e2e stacks minted: none may ever reach a log line.
ISSUED_TOKENS: set[str] = set()


@dataclass
class Stack:
    settings: Settings
    resources: bootstrap.Resources
    api: TestClient
    sandbox: Sandbox
    cashfree: CashfreeClient
    sandbox_url: str
    #: The SMTP server the stack sends to.
    mail: SmtpSink

    def token(self, user_id: str, *, admin: bool = False) -> str:
        token = mint_token(self.settings.security, user_id=user_id, admin=admin, now=datetime.now(UTC))
        ISSUED_TOKENS.add(token)
        return token

    def headers(self, user_id: str, *, key: str | None = None, admin: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(user_id, admin=admin)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def create(
        self,
        user_id: str,
        *,
        key: str | None = None,
        amount: str = "499.00",
        client_ip: str | None = None,
        email: str = "asha@example.com",
    ) -> Any:
        """Create a payment as ``user_id``; ``client_ip`` is named as a proxy would (X-Forwarded-For)."""
        headers = self.headers(user_id, key=key or uuid.uuid4().hex)
        if client_ip is not None:
            headers["X-Forwarded-For"] = client_ip
        return await self.api.post(
            "/api/v1/payments/create",
            json={
                "amount": amount,
                "currency": "INR",
                "customer": {"name": "Asha Rao", "email": email, "phone": "9876543210"},
                "description": "CommDesk Pro",
            },
            headers=headers,
        )

    async def verify(self, user_id: str, payment_id: str) -> Any:
        return await self.api.post(
            "/api/v1/payments/verify",
            json={"paymentId": payment_id},
            headers=self.headers(user_id, key=uuid.uuid4().hex),
        )

    async def pay(self, session_id: str, upi_id: str) -> None:
        """The customer pays at Cashfree (the sandbox's test instruments decide the outcome)."""
        request = OrderPayRequest(
            payment_session_id=session_id,
            payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id=upi_id)),
        )
        await self.cashfree.pay_order(request, attempt_key=uuid.uuid4().hex)

    def signed(self, body: bytes, *, idempotency_key: str) -> dict[str, str]:
        """The headers Cashfree would send with ``body`` (version 2025-01-01), signed now."""
        timestamp = str(int(datetime.now(UTC).timestamp() * 1000))
        return {
            "content-type": "application/json",
            "x-webhook-timestamp": timestamp,
            "x-webhook-signature": sign(SECRET, timestamp, body),
            "x-webhook-version": "2025-01-01",
            "x-webhook-attempt": "1",
            "x-idempotency-key": idempotency_key,
        }

    async def put_faults(self, faults: dict[str, Any]) -> None:
        """Switch the sandbox's faults through its control API (``PUT /_sandbox/faults``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.put(f"{self.sandbox_url}/_sandbox/faults", json=faults) as r,
        ):
            assert r.status == 200, await r.text()

    async def advance_sandbox_clock(self, seconds: float) -> None:
        """Move the sandbox's clock on (``POST /_sandbox/clock/advance``): its due work happens."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.sandbox_url}/_sandbox/clock/advance", json={"seconds": seconds}) as response,
        ):
            assert response.status == 200, await response.text()

    async def refund(self, user_id: str, payment_id: str, amount: str, *, key: str | None = None) -> Any:
        return await self.api.post(
            "/api/v1/refunds/initiate",
            json={"paymentId": payment_id, "amount": amount, "reason": "customer asked"},
            headers=self.headers(user_id, key=key or uuid.uuid4().hex),
        )

    async def paid(self, user_id: str, amount: str = "499.00") -> dict[str, Any]:
        """A payment created, paid at the sandbox and verified."""
        payment = await (await self.create(user_id, amount=amount)).json()
        await self.pay(payment["paymentSessionId"], "testsuccess@gocash")
        verified = await (await self.verify(user_id, payment["paymentId"])).json()
        assert verified["status"] == "SUCCESS", verified
        return dict(verified)

    def sandbox_attempts(self, order_id: str) -> list[tuple[str, str]]:
        """(cf_payment_id, status) of every attempt the sandbox holds for the order, oldest first."""
        return [
            (attempt.cf_payment_id, attempt.status.value)
            for attempt in self.sandbox.ledger.attempts.values()
            if attempt.order_id == order_id
        ]

    async def rows(self, query: str, *args: Any) -> list[Any]:
        return list(await self.resources.pool.fetch(query, *args))


async def running_stack(
    environ: dict[str, str], aiohttp_server, aiohttp_client, web_port: int
) -> AsyncIterator[Stack]:
    """Everything up; the web app listens on ``web_port`` so the sandbox can deliver webhooks to it."""
    public_url = f"http://127.0.0.1:{web_port}"
    sandbox_app = create_sandbox_app(
        SandboxConfig(
            app_id=APP_ID,
            secret_key=SECRET,
            webhook_url=f"{public_url}/api/v1/webhooks/cashfree",
            enforce_rate_limits=False,
        )
    )
    sandbox_server = await aiohttp_server(sandbox_app)
    # The stack's mail server: every email the agents send arrives here.
    async with SmtpSink() as mail:
        settings = load_settings(
            {
                "SMTP_URL": mail.url,
                **environ,
                "CASHFREE_BASE_URL": str(sandbox_server.make_url("/pg")),
                "CASHFREE_APP_ID": APP_ID,
                "CASHFREE_SECRET_KEY": SECRET,
                "PUBLIC_BASE_URL": public_url,
            }
        )
        async with bootstrap.open_resources(settings, process="e2e") as resources:
            await bootstrap._declare(resources)
            stop = asyncio.Event()
            worker = asyncio.create_task(
                bootstrap.build_worker(resources, App(bootstrap.blueprints())).run(stop)
            )
            api = await aiohttp_client(await aiohttp_server(bootstrap.web_app(resources), port=web_port))
            async with CashfreeClient(
                base_url=settings.cashfree.base_url, app_id=APP_ID, secret_key=SECRET
            ) as cashfree:
                yield Stack(
                    settings,
                    resources,
                    api,
                    sandbox_app[SANDBOX_KEY],
                    cashfree,
                    str(sandbox_server.make_url("")),
                    mail,
                )
            stop.set()
            await asyncio.wait_for(worker, timeout=30)

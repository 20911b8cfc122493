"""The assembled product in one test process: the Cashfree sandbox on a loopback port, the web app,
and a worker running every flow, all on the real PostgreSQL, Redis and RabbitMQ of the test run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox
from payments.pipeline import bootstrap
from payments.pipeline.app import App
from payments.pipeline.settings import Settings, load_settings
from payments.web.auth import mint_token

APP_ID = "e2e-app"
SECRET = "e2e-cashfree-secret-0123456789"


@dataclass
class Stack:
    settings: Settings
    resources: bootstrap.Resources
    api: TestClient
    sandbox: Sandbox
    cashfree: CashfreeClient

    def token(self, user_id: str, *, admin: bool = False) -> str:
        return mint_token(self.settings.security, user_id=user_id, admin=admin, now=datetime.now(UTC))

    def headers(self, user_id: str, *, key: str | None = None, admin: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token(user_id, admin=admin)}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    async def create(self, user_id: str, *, key: str | None = None, amount: str = "499.00") -> Any:
        return await self.api.post(
            "/api/v1/payments/create",
            json={
                "amount": amount,
                "currency": "INR",
                "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
                "description": "CommDesk Pro",
            },
            headers=self.headers(user_id, key=key or uuid.uuid4().hex),
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

    async def rows(self, query: str, *args: Any) -> list[Any]:
        return list(await self.resources.pool.fetch(query, *args))


async def running_stack(environ: dict[str, str], aiohttp_server, aiohttp_client) -> AsyncIterator[Stack]:
    sandbox_app = create_sandbox_app(
        SandboxConfig(
            app_id=APP_ID,
            secret_key=SECRET,
            webhook_url="http://127.0.0.1:9/unused",
            enforce_rate_limits=False,
        )
    )
    sandbox_server = await aiohttp_server(sandbox_app)
    settings = load_settings(
        {
            **environ,
            "CASHFREE_BASE_URL": str(sandbox_server.make_url("/pg")),
            "CASHFREE_APP_ID": APP_ID,
            "CASHFREE_SECRET_KEY": SECRET,
        }
    )
    async with bootstrap.open_resources(settings, process="e2e") as resources:
        await bootstrap._declare(resources)
        stop = asyncio.Event()
        worker = asyncio.create_task(bootstrap.build_worker(resources, App(bootstrap.blueprints())).run(stop))
        api = await aiohttp_client(bootstrap.web_app(resources))
        async with CashfreeClient(
            base_url=settings.cashfree.base_url, app_id=APP_ID, secret_key=SECRET
        ) as cashfree:
            yield Stack(settings, resources, api, sandbox_app[SANDBOX_KEY], cashfree)
        stop.set()
        await asyncio.wait_for(worker, timeout=30)

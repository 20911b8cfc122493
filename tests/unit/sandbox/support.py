"""Helpers for the sandbox tests: credentials, a PG caller, and a webhook receiver that records."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app
from payments.bridges.cashfree.sandbox.jsonbody import loads

APP_ID = "sandbox-test-app"
SECRET = "sandbox-test-secret"
VERSION = "2025-01-01"
CREDENTIALS = {"x-client-id": APP_ID, "x-client-secret": SECRET, "x-api-version": VERSION}
PUBLIC = {"x-api-version": VERSION}
_order_numbers = itertools.count(1)


def config(webhook_url: str = "http://127.0.0.1:9/unused", **overrides: Any) -> SandboxConfig:
    return SandboxConfig(app_id=APP_ID, secret_key=SECRET, webhook_url=webhook_url, **overrides)


@dataclass(frozen=True)
class Delivered:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> Any:
        return loads(self.body)


@dataclass
class Receiver:
    """A merchant webhook endpoint: answers the queued statuses (then 200) and records every request."""

    url: str = ""
    statuses: deque[int] = field(default_factory=deque)
    received: list[Delivered] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Delivered(dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.popleft() if self.statuses else 200)


class Pg:
    """Calls the sandbox's PG API the way our client would."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        response = await self.client.request(method, f"/pg{path}", json=body, headers=headers or CREDENTIALS)
        assert response.status == 200, (response.status, await response.text())
        return loads(await response.read())

    async def create_order(self, amount: str | int = "100.00", **fields: Any) -> Any:
        body = {
            "order_id": f"order-{next(_order_numbers)}",
            "order_amount": Decimal(amount) if isinstance(amount, str) else amount,
            "order_currency": "INR",
            "customer_details": {"customer_id": "customer-1", "customer_phone": "9876543210"},
            **fields,
        }
        return await self.call("POST", "/orders", _jsonable(body))

    async def pay_upi(self, order: Any, upi_id: str = "testsuccess@gocash") -> Any:
        body = {
            "payment_session_id": order["payment_session_id"],
            "payment_method": {"upi": {"channel": "collect", "upi_id": upi_id}},
        }
        return await self.call("POST", "/orders/sessions", body, headers=PUBLIC)

    async def paid_order(self, amount: str = "100.00", **fields: Any) -> Any:
        order = await self.create_order(amount, **fields)
        await self.pay_upi(order)
        return order

    async def refund(self, order_id: str, refund_id: str, amount: str, **fields: Any) -> Any:
        body = {"refund_id": refund_id, "refund_amount": float(amount), **fields}
        return await self.call("POST", f"/orders/{order_id}/refunds", body)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.client.request(method, f"/_sandbox{path}", json=body)
        assert response.status == 200, (response.status, await response.text())
        return await response.json()

    async def advance(self, seconds: float) -> Any:
        return await self.control("POST", "/clock/advance", {"seconds": seconds})

    async def deliveries(self) -> list[dict[str, Any]]:
        return (await self.control("GET", "/webhooks"))["deliveries"]


def _jsonable(value: Any) -> Any:
    """Decimals as floats for aiohttp's json= (the amounts here have at most two decimals)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return float(value) if isinstance(value, Decimal) else value


async def start_sandbox(aiohttp_client: AiohttpClient, **overrides: Any) -> Pg:
    return Pg(await aiohttp_client(create_sandbox_app(config(**overrides))))

"""The local Cashfree sandbox on a loopback port, a webhook sink for it, and clients pointed at it.

``sleeps`` records every backoff the client asks for instead of waiting it out, so retry tests check
the waits without taking them. ``sent`` records every request a client sends (secret masked).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from payments.bridges.cashfree.client import CashfreeClient, SentRequest
from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app

APP_ID = "commdesk-test-app"
SECRET = "cfsk_ma_test_6c1b9e0d4f2a4b7c8e3d"


@dataclass
class Sandbox:
    server: TestServer
    control: TestClient

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/pg"))

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        """A call to the sandbox's own control API (``/_sandbox/...``); fails the test unless 2xx."""
        response = await self.control.post(path, json=payload)
        assert response.status < 300, await response.text()
        return await response.json()

    async def put(self, path: str, payload: dict[str, Any]) -> Any:
        response = await self.control.put(path, json=payload)
        assert response.status < 300, await response.text()
        return await response.json()


@pytest.fixture
async def sandbox(aiohttp_server, aiohttp_client) -> Sandbox:
    sink = web.Application()
    sink.router.add_post("/webhooks", _accept_webhook)
    sink_server = await aiohttp_server(sink)
    config = SandboxConfig(
        app_id=APP_ID,
        secret_key=SECRET,
        webhook_url=str(sink_server.make_url("/webhooks")),
        # The tests make more calls a minute than Cashfree's sandbox allows; 429s are injected instead.
        enforce_rate_limits=False,
    )
    server = await aiohttp_server(create_sandbox_app(config))
    return Sandbox(server, await aiohttp_client(server))


async def _accept_webhook(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sent() -> list[SentRequest]:
    return []


ClientFactory = Callable[..., Awaitable[CashfreeClient]]


@pytest.fixture
async def open_client(
    sandbox: Sandbox, sleeps: list[float], sent: list[SentRequest]
) -> AsyncIterator[ClientFactory]:
    """Opens clients on the sandbox (closed after the test); keyword arguments override the defaults."""
    clients: list[CashfreeClient] = []

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def open_one(**overrides: Any) -> CashfreeClient:
        options: dict[str, Any] = {
            "base_url": sandbox.base_url,
            "app_id": APP_ID,
            "secret_key": SECRET,
            "timeout_seconds": 5.0,
            "max_retries": 3,
            "sleep": record_sleep,
            "on_request": sent.append,
        }
        client = CashfreeClient(**(options | overrides))
        clients.append(await client.__aenter__())
        return client

    yield open_one
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(open_client: ClientFactory) -> CashfreeClient:
    return await open_client()

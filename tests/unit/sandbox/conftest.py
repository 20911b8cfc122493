"""Fixtures: a sandbox per test, and a webhook receiver on a real loopback port."""

from __future__ import annotations

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpClient, AiohttpServer

from tests.unit.sandbox.support import Pg, Receiver, start_sandbox


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    app.router.add_post("/order-hooks", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = str(server.make_url("/hooks"))
    return receiver


@pytest.fixture
async def pg(aiohttp_client: AiohttpClient, receiver: Receiver) -> Pg:
    return await start_sandbox(aiohttp_client, webhook_url=receiver.url)

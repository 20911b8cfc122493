"""``create_sandbox_app``: the aiohttp app of the local Cashfree, with its background loops.

Two loops run while the app runs (``cleanup_ctx``), each polling on a short real interval: one
applies what the sandbox clock made due (expiries, attempt and refund outcomes), the other sends due
webhooks. Both stop with the app; an unexpected error in either surfaces when the app shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import aiohttp
from aiohttp import web

from payments.bridges.cashfree.sandbox.config import SandboxConfig
from payments.bridges.cashfree.sandbox.control import add_control_routes
from payments.bridges.cashfree.sandbox.pg_middleware import pg_middleware
from payments.bridges.cashfree.sandbox.pg_routes import ENDPOINTS, add_pg_routes
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox
from payments.bridges.cashfree.sandbox.webhooks import DeliveryAttempt, WebhookSender

#: Real seconds between two looks at due work.
POLL_SECONDS: Final = 0.02


def create_sandbox_app(config: SandboxConfig) -> web.Application:
    """The sandbox: PG API under ``/pg``, control API under ``/_sandbox``, state in the app."""
    app = web.Application(middlewares=[pg_middleware({endpoint.name: endpoint for endpoint in ENDPOINTS})])
    app[SANDBOX_KEY] = Sandbox.create(config)
    add_pg_routes(app)
    add_control_routes(app)
    app.cleanup_ctx.append(_background)
    return app


async def _background(app: web.Application) -> AsyncIterator[None]:
    sandbox = app[SANDBOX_KEY]
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(
            session, secret=sandbox.config.secret_key, version=sandbox.config.webhook_version
        )
        tasks = [
            asyncio.create_task(_run_timers(sandbox), name="sandbox-timers"),
            asyncio.create_task(_deliver_webhooks(sandbox, sender), name="sandbox-webhooks"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _run_timers(sandbox: Sandbox) -> None:
    while True:
        sandbox.run_due()
        await asyncio.sleep(POLL_SECONDS)


async def _deliver_webhooks(sandbox: Sandbox, sender: WebhookSender) -> None:
    while True:
        for delivery in sandbox.outbox.due(
            sandbox.now(), newest_first=sandbox.faults.settings.reorder_webhooks
        ):
            number, sent_at = len(delivery.attempts) + 1, sandbox.now()
            status, error = await sender.send(delivery, number)
            sandbox.outbox.record(delivery, DeliveryAttempt(number, sent_at, status, error))
        await asyncio.sleep(POLL_SECONDS)

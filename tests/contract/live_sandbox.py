"""The sandbox served for real on a loopback port from a background thread, for tools (schemathesis)
that make their own blocking HTTP calls and so cannot share the test's event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app


@contextmanager
def live_sandbox(config: SandboxConfig) -> Iterator[str]:
    """Serve the sandbox on 127.0.0.1 (a free port) until the block ends; yields its base URL."""
    loop = asyncio.new_event_loop()
    started: dict[str, object] = {}
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        runner = web.AppRunner(create_sandbox_app(config), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        started["port"] = runner.addresses[0][1]
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(timeout=30):
        raise RuntimeError("the sandbox did not start within 30 s")
    try:
        yield f"http://127.0.0.1:{started['port']}/pg"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()

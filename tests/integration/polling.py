"""Waiting for a condition with a deadline, instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

#: Long enough for a loaded CI machine, short enough that a broken test fails quickly.
DEADLINE_SECONDS = 15.0


async def eventually(condition: Callable[[], Awaitable[bool]], *, what: str) -> None:
    """Poll ``condition`` until it holds, failing the test at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        # A short pause between polls so they do not hammer the server; the condition decides, not the pause.
        await asyncio.sleep(0.02)

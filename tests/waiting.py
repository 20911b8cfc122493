"""Waiting on a condition with a deadline: the only way tests here wait for asynchronous work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a loaded CI machine, short enough that a broken test fails quickly.
DEADLINE_SECONDS = 15.0


async def eventually(
    probe: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = DEADLINE_SECONDS,
    interval: float = 0.01,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail the test if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)

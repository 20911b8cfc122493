"""Webhooks in a chaos test: every delivery the web process answered, whoever sent it.

- ``WebhookTap`` stands where Cashfree's network would: the sandbox delivers to it, and it forwards
  each delivery to the web process byte for byte (body and Cashfree's headers, the sandbox's own
  signature) and hands the sandbox back exactly what the web process answered, noting the answer. So
  the sandbox's retries follow the real answers, and the test knows every webhook answered 200.
- ``Redelivery`` sends the tapped events again as the test's own deliveries, signed afresh: exact
  duplicates (same ``x-idempotency-key``), the same events without the header (ingest then derives the
  key from the body: one event under a second identity), newest first (out of order); each is sent
  again until answered 200, as Cashfree resends.

``Delivery.event_id`` is the ``webhook_logs.event_id`` ingest gives it, derived by the same parser.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import aiohttp
from aiohttp import web

from payments.bridges.cashfree.signature import sign
from payments.bridges.cashfree.webhooks import parse_webhook
from payments.web.webhooks import KEPT_HEADERS

APP_ID: Final = "chaos-app"
SECRET: Final = "chaos-cashfree-secret-0123456789"
WEBHOOK_PATH: Final = "/api/v1/webhooks/cashfree"
#: What the tap answers the sandbox when the web process did not answer at all.
UNREACHABLE: Final = 502
#: One delivery's wait for the web process (the sandbox itself gives up on an attempt after 5 s).
FORWARD_TIMEOUT_SECONDS: Final = 4.5


@dataclass(frozen=True)
class Delivery:
    """One POST of a webhook to the web process and its answer (None: no answer)."""

    sender: str  #: "sandbox" (through the tap) or "test"
    body: bytes
    #: ``x-idempotency-key``, or None when the delivery carried none.
    key: str | None
    event_id: str
    status: int | None


def event_id_of(body: bytes, key: str | None) -> str:
    """The dedup key ingest derives for this body and ``x-idempotency-key`` (``webhook_logs.event_id``)."""
    headers = {"x-idempotency-key": key} if key else {}
    return parse_webhook(body, headers).dedup_key


def signed_headers(body: bytes, *, key: str | None) -> dict[str, str]:
    """The headers Cashfree sends with ``body`` (payload 2025-01-01), signed now."""
    timestamp = str(int(datetime.now(UTC).timestamp() * 1000))
    headers = {
        "content-type": "application/json",
        "x-webhook-timestamp": timestamp,
        "x-webhook-signature": sign(SECRET, timestamp, body),
        "x-webhook-version": "2025-01-01",
        "x-webhook-attempt": "1",
    }
    if key is not None:
        headers["x-idempotency-key"] = key
    return headers


async def post_webhook(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, bytes]:
    """POST one delivery; (status, body), or (None, b"") when the web process did not answer."""
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_SECONDS)
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return None, b""


class WebhookTap:
    """The sandbox's webhook URL: forwards to the web process and keeps every answer."""

    def __init__(self, port: int, web_url: str, session: aiohttp.ClientSession) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.webhook_url = f"{self.url}{WEBHOOK_PATH}"
        self.deliveries: list[Delivery] = []
        self._target = f"{web_url}{WEBHOOK_PATH}"
        self._session = session

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        # What ingest keeps of a delivery is all Cashfree sends that matters; proxies' headers are not.
        headers = {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers}
        status, answer = await post_webhook(self._session, self._target, body, headers)
        key = headers.get("x-idempotency-key")
        self.deliveries.append(Delivery("sandbox", body, key, event_id_of(body, key), status))
        return web.Response(status=status or UNREACHABLE, body=answer, content_type="application/json")

    def accepted(self) -> list[Delivery]:
        """The sandbox's deliveries the web process answered 200, first answer of each event only."""
        seen: dict[str, Delivery] = {}
        for delivery in self.deliveries:
            if delivery.status == 200:
                seen.setdefault(delivery.event_id, delivery)
        return list(seen.values())


@contextlib.asynccontextmanager
async def running_tap(port: int, web_url: str) -> AsyncIterator[WebhookTap]:
    """A ``WebhookTap`` listening on ``port`` in the test's event loop until the block ends."""
    async with aiohttp.ClientSession() as session:
        tap = WebhookTap(port, web_url, session)
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, tap.forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            yield tap
        finally:
            await runner.cleanup()


class Redelivery:
    """The test's own deliveries of the tapped events: duplicates, second identities, out of order."""

    def __init__(self, tap: WebhookTap, web_url: str, session: aiohttp.ClientSession) -> None:
        self.deliveries: list[Delivery] = []
        self._tap = tap
        self._url = f"{web_url}{WEBHOOK_PATH}"
        self._session = session
        #: (body, key) still to be answered 200.
        self._owed: list[tuple[bytes, str | None]] = []
        self._taken = 0

    async def run(self, stop: asyncio.Event, interval: float = 0.3) -> None:
        """Every ``interval``: send the newly tapped events again, and whatever is still owed."""
        while not stop.is_set():
            await self.round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def round(self) -> None:
        """Queue the events tapped since the last round (newest first), then send everything owed."""
        fresh = [d for d in self._tap.deliveries[self._taken :] if d.status == 200]
        self._taken = len(self._tap.deliveries)
        for number, delivery in enumerate(reversed(fresh)):
            self._owed.append((delivery.body, delivery.key))
            if number % 2 == 0:
                self._owed.append((delivery.body, None))
        owed, self._owed = self._owed, []
        for body, key in owed:
            status, _ = await post_webhook(self._session, self._url, body, signed_headers(body, key=key))
            self.deliveries.append(Delivery("test", body, key, event_id_of(body, key), status))
            if status != 200:
                self._owed.append((body, key))

    @property
    def settled(self) -> bool:
        """Every delivery of the test has been answered 200, and every tapped event was sent again."""
        return not self._owed and self._taken == len(self._tap.deliveries)

"""The admin page in headless Chromium: an alert raised while the page is open appears without a reload.

The web app runs on a loopback port with the admin alert routes over the real PostgreSQL (the backlog)
and a real ``RabbitAlertFeed`` on the test run's vhost (live alerts). Alerts are stored in ``alerts``
and published as ``email.admin.alert``, as the outbox relay publishes them. The browser is Debian's
chromium (``scripts/ensure-browser.sh``) driven by playwright's async API; every wait is one of
playwright's expectations with a deadline.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Error,
    Locator,
    Page,
    Request,
    async_playwright,
    expect,
)

from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.bridges.rabbitmq.alert_feed import RabbitAlertFeed
from payments.bridges.rabbitmq.connection import open_connection
from payments.bridges.rabbitmq.publisher import RabbitPublisher
from payments.bridges.rabbitmq.topology import declare_topology
from payments.domain.alerts.model import ADMIN_ALERT_ROUTING_KEY, Alert, Severity
from payments.domain.unit_of_work import UnitOfWork
from payments.pipeline.settings import Settings
from payments.pipeline.topology import Exchange
from payments.web.admin_alerts import STREAM_PATH, AlertStreamOptions, admin_alert_routes
from payments.web.auth import mint_token
from tests.unit._web_support import build_app

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
#: Deadline of every browser expectation: generous for a loaded CI machine, short enough to fail fast.
EXPECT_MS = 15_000
#: The page reconnects quickly in these tests (production tells it 3 s).
RETRY_MS = 200


def new_alert(title: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        kind="fraud.velocity",
        subject=f"ip:203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}",
        severity=Severity.CRITICAL,
        title=title,
        details={"payments": 12, "threshold": 10, "windowSeconds": 60},
        since=now - timedelta(minutes=1),
        raised_at=now,
        source="fraud",
    )


class AdminWeb:
    """The web app with the admin alert routes on a fixed loopback port; can be stopped and started again."""

    def __init__(self, settings: Settings, feed: RabbitAlertFeed, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.feed = feed
        self.pool = pool
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        return pg_unit_of_work(self.pool)

    async def start(self) -> None:
        routes = admin_alert_routes(
            feed=self.feed,
            unit_of_work=self.unit_of_work,
            options=AlertStreamOptions(retry_milliseconds=RETRY_MS),
        )
        runner = web.AppRunner(build_app(settings=self.settings, routes=routes))
        await runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        self.port = listener.getsockname()[1]
        await web.SockSite(runner, listener).start()
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def admin_token(self) -> str:
        return mint_token(self.settings.security, user_id="admin-e2e", admin=True, now=datetime.now(UTC))


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    async with open_connection(amqp_url, name="e2e-admin-alerts") as connection:
        channel = await connection.channel()
        await declare_topology(channel, ())
        await channel.close()
        yield connection


@pytest.fixture
async def admin_web(amqp: AbstractRobustConnection, pg_pool: asyncpg.Pool) -> AsyncIterator[AdminWeb]:
    feed = RabbitAlertFeed(amqp)
    await feed.start()
    server = AdminWeb(Settings(), feed, pg_pool)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await feed.close()


class Alerts:
    """Raises alerts as ``raise_alert`` and the outbox relay do: stored, then published."""

    def __init__(self, admin_web: AdminWeb, publisher: RabbitPublisher) -> None:
        self._admin_web = admin_web
        self._publisher = publisher

    async def stored(self, alert: Alert) -> Alert:
        """Only stored (raised while no page was watching)."""
        async with self._admin_web.unit_of_work() as uow:
            assert await uow.alerts.add_unless_recent(alert, cooldown=timedelta(0))
        return alert

    async def raised(self, alert: Alert) -> Alert:
        """Stored, then published as ``email.admin.alert``."""
        await self.stored(alert)
        await self._publisher.publish(
            exchange=Exchange.EMAIL.value,
            routing_key=ADMIN_ALERT_ROUTING_KEY,
            body=json.dumps(alert.message()).encode(),
            message_id=f"evt_{alert.alert_id}",
        )
        return alert


@pytest.fixture
async def alerts(amqp: AbstractRobustConnection, admin_web: AdminWeb) -> Alerts:
    return Alerts(admin_web, RabbitPublisher(await amqp.channel(publisher_confirms=True), timeout=5.0))


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; missing means the machine was not set up, which fails rather than skips."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        # --no-sandbox: the tests run as root, and Chromium refuses its sandbox to root.
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught errors and console errors of the page (a CSP violation is reported as one)."""
    return []


@pytest.fixture
async def page(browser: Browser, page_errors: list[str]) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()

    def uncaught(error: Error) -> None:
        page_errors.append(f"page error: {error}")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            page_errors.append(message.text)

    page.on("pageerror", uncaught)
    page.on("console", console)
    yield page
    await context.close()


def alert_item(page: Page, alert: Alert) -> Locator:
    return page.locator(f'[data-alert-id="{alert.alert_id}"]')


async def open_admin_page(page: Page, admin_web: AdminWeb) -> None:
    await page.goto(f"{admin_web.url}/admin#token={admin_web.admin_token()}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)


async def test_an_alert_raised_while_the_page_is_open_appears_without_a_reload(
    page: Page, page_errors: list[str], admin_web: AdminWeb, alerts: Alerts
) -> None:
    earlier = await alerts.stored(new_alert("Velocity rule tripped earlier"))
    await open_admin_page(page, admin_web)
    await expect(alert_item(page, earlier).locator('[data-field="title"]')).to_have_text(
        earlier.title, timeout=EXPECT_MS
    )
    assert "token" not in page.url
    # Survives only if the page is never reloaded.
    await page.evaluate("window.__samePage = true")

    live = await alerts.raised(new_alert("12 payments from one IP in a minute"))

    item = alert_item(page, live)
    await expect(item.locator('[data-field="title"]')).to_have_text(live.title, timeout=EXPECT_MS)
    await expect(item).to_have_attribute("data-kind", "fraud.velocity")
    await expect(item.locator('[data-field="severity"]')).to_have_text("critical")
    await expect(item.locator('[data-field="subject"]')).to_have_text(live.subject)
    await expect(item.locator('[data-field="details"] tr')).to_have_count(3)
    await expect(page.locator("#alerts > li").first).to_have_attribute("data-alert-id", live.alert_id)
    assert await page.evaluate("window.__samePage") is True
    assert page_errors == []


async def test_the_page_reconnects_after_the_server_restarts_and_catches_up_once(
    page: Page, page_errors: list[str], admin_web: AdminWeb, alerts: Alerts
) -> None:
    stream_requests: list[Request] = []

    def record(request: Request) -> None:
        if STREAM_PATH in request.url:
            stream_requests.append(request)

    page.on("request", record)
    await open_admin_page(page, admin_web)
    seen = await alerts.raised(new_alert("Failure rate on UPI above 30%"))
    await expect(alert_item(page, seen)).to_have_count(1, timeout=EXPECT_MS)

    await admin_web.stop()
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "reconnecting", timeout=EXPECT_MS
    )
    missed = await alerts.raised(new_alert("Refund spike while the page was away"))
    await admin_web.start()

    await expect(alert_item(page, missed)).to_have_count(1, timeout=EXPECT_MS)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=EXPECT_MS)
    await expect(alert_item(page, seen)).to_have_count(1)
    assert await stream_requests[-1].header_value("last-event-id") == seen.alert_id
    assert await stream_requests[0].header_value("last-event-id") is None
    # Chromium reports each refused reconnect attempt on the console; nothing else may fail.
    assert [error for error in page_errors if "ERR_CONNECTION_REFUSED" not in error] == []

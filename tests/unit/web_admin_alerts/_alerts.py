"""The admin alert routes over the real app factory, the in-memory store and the in-process fan-out."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientResponse, web

from payments.bridges.rabbitmq.alert_feed import AlertFanout
from payments.domain.alerts.model import Alert, Severity
from payments.pipeline.settings import Settings
from payments.web.admin_alerts import AlertStreamOptions, admin_alert_routes
from payments.web.auth import mint_token
from tests.fakes.storage import InMemoryStore
from tests.unit._web_support import build_app

ADMIN = "admin-1"
USER = "user-1"
STREAM = "/api/v1/admin/alerts/stream"
LIST = "/api/v1/admin/alerts"
RAISED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: A stream read that takes longer than this has failed; far below pytest's own timeout.
READ_SECONDS = 5.0


def alert(subject: str, *, minutes: int = 0, title: str | None = None) -> Alert:
    raised_at = RAISED + timedelta(minutes=minutes)
    return Alert(
        kind="payments.failure_rate",
        subject=subject,
        severity=Severity.WARNING,
        title=title or f"Failure rate high for {subject}",
        details={"failures": 12, "total": 40, "rate": 0.3},
        since=raised_at - timedelta(minutes=10),
        raised_at=raised_at,
        source="alerts",
    )


class AlertsWorld:
    def __init__(self, *, heartbeat_seconds: float = 60.0, backlog: int = 3, buffer: int = 10) -> None:
        self.settings = Settings()
        self.store = InMemoryStore()
        self.feed = AlertFanout(buffer=buffer)
        self.options = AlertStreamOptions(heartbeat_seconds=heartbeat_seconds, backlog=backlog)

    def app(self) -> web.Application:
        routes = admin_alert_routes(
            feed=self.feed, unit_of_work=self.store.unit_of_work, options=self.options
        )
        return build_app(settings=self.settings, routes=routes)

    def headers(self, user: str = ADMIN, *, admin: bool = True) -> dict[str, str]:
        token = mint_token(self.settings.security, user_id=user, admin=admin, now=datetime.now(UTC))
        return {"Authorization": f"Bearer {token}"}

    async def stored(self, *alerts: Alert) -> None:
        for one in alerts:
            async with self.store.unit_of_work() as uow:
                assert await uow.alerts.add_unless_recent(one, cooldown=timedelta(0))


@dataclass
class Frame:
    """One SSE frame as sent: its field lines, comments included."""

    lines: list[str] = field(default_factory=list)

    def fields(self, name: str) -> list[str]:
        return [line.split(": ", 1)[1] for line in self.lines if line.startswith(f"{name}: ")]

    @property
    def is_comment(self) -> bool:
        return all(line.startswith(":") for line in self.lines)


class EventReader:
    """Reads an SSE response frame by frame, each read under a deadline."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def frame(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        frame = Frame()
        async with asyncio.timeout(READ_SECONDS):
            while True:
                raw = await self.response.content.readline()
                if raw == b"":
                    return None
                line = raw.decode().rstrip("\n")
                if line:
                    frame.lines.append(line)
                elif frame.lines:
                    return frame

    async def alert(self) -> tuple[str, dict[str, Any]]:
        """The next alert event's id and data, skipping comments and the retry hint."""
        while True:
            frame = await self.frame()
            assert frame is not None, "the stream ended before the next alert"
            if frame.fields("event"):
                assert frame.fields("event") == ["alert"]
                [event_id] = frame.fields("id")
                [data] = frame.fields("data")
                return event_id, json.loads(data)

    async def opened(self) -> Frame:
        """The first frame, the retry hint: sent once the stream has subscribed to the feed."""
        frame = await self.frame()
        assert frame is not None
        assert frame.fields("retry") == ["3000"]
        return frame

    async def ended(self) -> bool:
        async with asyncio.timeout(READ_SECONDS):
            await self.response.content.read()
        return self.response.content.at_eof()

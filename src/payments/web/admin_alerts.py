"""Live admin alerts (issue 7 §4): a list, a Server-Sent Events stream, and the page that shows it.

- ``GET /api/v1/admin/alerts?limit=50``: the newest stored alerts, newest first (admin only);
- ``GET /api/v1/admin/alerts/stream``: an SSE stream (admin only, bearer token like every API route).
  It opens with the recent backlog, oldest first (after ``Last-Event-ID`` when the client names an
  alert of that backlog), then every alert as it is published, each as ``id: <alertId>``,
  ``event: alert``, ``data: <the alert message as JSON>``, with a comment line as a heartbeat;
- ``GET /admin`` and its assets under ``/admin/`` (``static/``): the admin page. It holds no data,
  so it needs no token; the page asks for one and reads the stream with ``fetch()``, since EventSource
  cannot send an Authorization header.

The stream subscribes to the feed *before* it reads the backlog, so an alert committed in between
arrives live; one that is in the backlog and then arrives live as well is sent once. Alerts come from
an ``AlertFeed`` (in production ``bridges/rabbitmq/alert_feed.py``: ``email.admin.alert`` messages) and
the backlog from ``uow.alerts``. Open streams end when the app shuts down (``on_shutdown``), so the
server stops promptly; a client that went away is noticed at the next write, a heartbeat at the latest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from typing import Any, Final, Protocol

from aiohttp import hdrs, web

from payments.domain.alerts.model import StoredAlert
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.web.admin import parse_limit
from payments.web.auth import require_admin
from payments.web.keys import LONG_LIVED_KEY


class AlertFeed(Protocol):
    """Alert messages (``Alert.message()`` bodies) as they are published, to every subscriber."""

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[Mapping[str, Any]]]:
        """``async with feed.subscribe() as alerts: async for message in alerts: ...``

        The iterator ends when the feed closes, or when this subscriber fell too far behind and was
        dropped; either way the client reconnects and catches up from the stored alerts.
        """
        ...


@dataclass(frozen=True)
class AlertStreamOptions:
    #: Seconds between heartbeat comments: proxies and browsers close a connection that stays silent.
    heartbeat_seconds: float = 15.0
    #: Stored alerts a new connection starts with.
    backlog: int = 50
    #: Milliseconds a client waits before reconnecting (the SSE ``retry:`` field).
    retry_milliseconds: int = 3000


#: Where live alerts come from.
ALERT_FEED_KEY: Final[web.AppKey[AlertFeed]] = web.AppKey("admin_alert_feed")
#: Opens the read transactions of the list and of the stream's backlog.
ALERTS_UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey("admin_alerts_unit_of_work")
#: Heartbeat, backlog size and retry hint of the stream.
ALERT_STREAM_OPTIONS_KEY: Final[web.AppKey[AlertStreamOptions]] = web.AppKey("admin_alert_stream_options")
#: Set on shutdown: every open stream ends.
ALERT_STREAMS_CLOSING_KEY: Final[web.AppKey[asyncio.Event]] = web.AppKey("admin_alert_streams_closing")

STREAM_PATH: Final = "/api/v1/admin/alerts/stream"
#: SSE event type of an alert; the page listens for this one.
ALERT_EVENT: Final = "alert"
HEARTBEAT: Final = b": heartbeat\n\n"
#: An alert id as ``Alert.alert_id`` makes them; it becomes an SSE ``id:`` line, so no line breaks.
_ALERT_ID: Final = re.compile(r"[\x21-\x7e]{1,128}")
#: The admin page and its assets: path -> (route name, file under ``static/``, content type).
_STATIC: Final[Mapping[str, tuple[str, str, str]]] = {
    "/admin": ("admin.page", "admin.html", "text/html; charset=utf-8"),
    "/admin/app.js": ("admin.page.script", "app.js", "text/javascript; charset=utf-8"),
    "/admin/app.css": ("admin.page.style", "app.css", "text/css; charset=utf-8"),
    "/admin/favicon.svg": ("admin.page.icon", "favicon.svg", "image/svg+xml"),
}
#: The page runs only its own script and style and talks only to us (DESIGN §8). The other security
#: headers (nosniff, frame and referrer policy, ...) come with every response (``web/security_headers.py``).
_PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    # Small files, and a deploy must reach open pages at once: revalidate every time.
    "Cache-Control": "no-cache",
}
_STREAM_HEADERS: Final[Mapping[str, str]] = {
    hdrs.CONTENT_TYPE: "text/event-stream; charset=utf-8",
    hdrs.CACHE_CONTROL: "no-store",
    # nginx buffers proxied responses unless told otherwise; a buffered stream is not live.
    "X-Accel-Buffering": "no",
}

_log = logging.getLogger(__name__)


def admin_alert_routes(
    *,
    feed: AlertFeed,
    unit_of_work: UnitOfWorkFactory,
    options: AlertStreamOptions | None = None,
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)`` that stores the dependencies, then adds routes."""

    def setup(app: web.Application) -> None:
        app[ALERT_FEED_KEY] = feed
        app[ALERTS_UNIT_OF_WORK_KEY] = unit_of_work
        app[ALERT_STREAM_OPTIONS_KEY] = options or AlertStreamOptions()
        setup_admin_alert_routes(app)

    return setup


def setup_admin_alert_routes(app: web.Application) -> None:
    """Add the alert routes and the admin page; the app must hold the feed, the unit of work and the
    options under the keys above. Open streams end when the app shuts down."""
    app[ALERT_STREAMS_CLOSING_KEY] = asyncio.Event()
    app.on_shutdown.append(_end_streams)
    router = app.router
    router.add_get("/api/v1/admin/alerts", list_alerts, name="admin.alerts")
    # No HEAD: it would open a stream that sends nothing.
    router.add_get(STREAM_PATH, alert_stream, name="admin.alerts.stream", allow_head=False)
    for path, (route_name, file_name, content_type) in _STATIC.items():
        router.add_get(path, _static_file(file_name, content_type), name=route_name)


async def _end_streams(app: web.Application) -> None:
    app[ALERT_STREAMS_CLOSING_KEY].set()


async def list_alerts(request: web.Request) -> web.Response:
    """``GET /api/v1/admin/alerts``: up to ``limit`` stored alerts, newest first."""
    require_admin(request)
    limit = parse_limit(request.query.get("limit"))
    async with request.config_dict[ALERTS_UNIT_OF_WORK_KEY]() as uow:
        stored = await uow.alerts.recent(limit=limit)
    return web.json_response({"alerts": [stored_alert_json(alert) for alert in stored]}, dumps=alert_json)


def stored_alert_json(stored: StoredAlert) -> dict[str, Any]:
    """A stored alert on the wire: its message, plus the sequence that orders alerts."""
    return {**stored.alert.message(), "sequence": stored.sequence}


async def alert_stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/admin/alerts/stream``: the backlog, then live alerts, until either side leaves."""
    require_admin(request)
    request[LONG_LIVED_KEY] = True
    app = request.config_dict
    options = app[ALERT_STREAM_OPTIONS_KEY]
    response = web.StreamResponse(headers=_STREAM_HEADERS)
    async with app[ALERT_FEED_KEY].subscribe() as live:
        async with app[ALERTS_UNIT_OF_WORK_KEY]() as uow:
            stored = await uow.alerts.recent(limit=options.backlog)
        backlog = [stored_alert_json(alert) for alert in reversed(stored)]
        try:
            await response.prepare(request)
            await response.write(f"retry: {options.retry_milliseconds}\n\n".encode())
            for message in after_last_seen(backlog, request.headers.get("Last-Event-ID")):
                await response.write(sse_event(message))
            already_sent = {message["alertId"] for message in backlog}
            await _relay(response, live, already_sent, options, app[ALERT_STREAMS_CLOSING_KEY])
        except ConnectionResetError:
            _log.debug("an admin alert stream's client went away")
    return response


def after_last_seen(
    backlog: Sequence[Mapping[str, Any]], last_event_id: str | None
) -> Sequence[Mapping[str, Any]]:
    """The backlog after the alert the client saw last, or all of it if that alert is not in it."""
    ids = [message["alertId"] for message in backlog]
    if last_event_id is None or last_event_id not in ids:
        return backlog
    return backlog[ids.index(last_event_id) + 1 :]


def alert_json(value: object) -> str:
    """Compact JSON of an alert message; it never contains a line break."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_number)


def _number(value: object) -> float:
    # Stored details come back from jsonb with fractional numbers as Decimal (bridges/postgres/json_values).
    # Those were JSON numbers when the alert was raised, floats such as a failure rate (amounts travel as
    # strings), so a float writes them as the live message carried them.
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def sse_event(message: Mapping[str, Any]) -> bytes:
    """One SSE event; compact JSON has no line break, so one ``data:`` line holds it."""
    data = alert_json(message)
    return f"id: {message['alertId']}\nevent: {ALERT_EVENT}\ndata: {data}\n\n".encode()


async def _relay(
    response: web.StreamResponse,
    live: AsyncIterator[Mapping[str, Any]],
    already_sent: set[str],
    options: AlertStreamOptions,
    closing: asyncio.Event,
) -> None:
    # One pending read of the feed survives heartbeats: cancelling it could lose the alert it holds.
    next_alert = asyncio.ensure_future(_next(live))
    closed = asyncio.ensure_future(closing.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {next_alert, closed}, timeout=options.heartbeat_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if closed in done:
                return
            if next_alert not in done:
                await response.write(HEARTBEAT)
                continue
            message = next_alert.result()
            if message is None:  # the feed closed, or dropped us: the client reconnects and catches up
                return
            next_alert = asyncio.ensure_future(_next(live))
            if _sendable(message) and message["alertId"] not in already_sent:
                await response.write(sse_event(message))
    finally:
        next_alert.cancel()
        closed.cancel()


async def _next(live: AsyncIterator[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return await anext(live, None)


def _sendable(message: Mapping[str, Any]) -> bool:
    alert_id = message.get("alertId")
    if isinstance(alert_id, str) and _ALERT_ID.fullmatch(alert_id) is not None:
        return True
    _log.warning("skipping an admin alert without a valid alertId")
    return False


def _static_file(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    # Read once when the routes are added: a few small files, and the handler never touches the disk.
    body = files("payments.web").joinpath("static", name).read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={hdrs.CONTENT_TYPE: content_type, **_PAGE_HEADERS})

    return serve

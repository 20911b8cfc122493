"""The admin routes of the webhook capability (issue 5 §4): dead-letter queues and reprocessing.

Every route here is for the admin role (``require_admin``: 401 without a token, 403 for a user):

- ``GET  /api/v1/admin/dlq``: each work queue's dead-letter depth;
- ``GET  /api/v1/admin/dlq/{queue}?limit=50``: the messages at the head of one DLQ, left in place;
- ``POST /api/v1/admin/dlq/{queue}/redrive`` with ``{"messageId": "..."}`` or ``{"all": true}``:
  moves messages back to their work queue with a fresh set of retries; answers ``{"redriven": n}``;
- ``POST /api/v1/admin/webhooks/{webhookId}/reprocess``: queues a stored webhook (``webhook_logs`` id)
  again; answers 202 with the dedup key it queued.

Each action (not the reads) writes an audit row in a unit of work of its own once it has happened,
including a re-drive that stopped part way. Bodies and headers of dead letters are shown masked: an
operator needs ids, errors and shape, not customers' emails and phone numbers.

The routes read four values from the app, under the keys below; ``admin_routes`` sets them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import hdrs, web

from payments.domain.audit.model import AuditEntry
from payments.domain.clock import Clock
from payments.domain.dead_letters import DeadLetter, DeadLetters, RedriveInterrupted
from payments.domain.errors import ValidationFailed
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.pipeline.logging import mask_text, mask_value
from payments.web.auth import Principal, require_admin
from payments.web.client_ip import client_ip
from payments.web.keys import TRACE_KEY
from payments.web.payment_requests import read_json
from payments.web.payment_views import timestamp

#: Queues a stored webhook again by its ``webhook_logs`` id; returns the dedup key it queued, or raises
#: ``NotFound``. The webhook capability provides it.
ReprocessWebhook = Callable[[int], Awaitable[str]]

#: The dead-letter queues of the work queues.
DEAD_LETTERS_KEY: Final[web.AppKey[DeadLetters]] = web.AppKey("admin_dead_letters")
#: Opens the unit of work each admin action writes its audit row in.
ADMIN_UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey("admin_unit_of_work")
#: Queues a stored webhook again (``ReprocessWebhook``).
REPROCESS_WEBHOOK_KEY: Final[web.AppKey[ReprocessWebhook]] = web.AppKey("admin_reprocess_webhook")
#: The time audit rows are stamped with.
ADMIN_CLOCK_KEY: Final[web.AppKey[Clock]] = web.AppKey("admin_clock")

#: Audit actions and the resource types they name.
REDRIVE_ACTION: Final = "admin.dlq.redrive"
REPROCESS_ACTION: Final = "admin.webhook.reprocess"
QUEUE_RESOURCE: Final = "queue"
WEBHOOK_RESOURCE: Final = "webhook"

#: Dead letters listed when the query names no limit, and the most one page may hold.
DEFAULT_LIST_LIMIT: Final = 50
MAX_LIST_LIMIT: Final = 500
#: A queue name as ``pipeline/topology.py`` makes them; anything else is 404 before the broker is asked.
_QUEUE_SEGMENT: Final = "[A-Za-z0-9._-]{1,200}"
#: ``webhook_logs.id`` is a bigserial; 18 digits always fit in one.
_WEBHOOK_ID_SEGMENT: Final = "[0-9]{1,18}"
#: An AMQP message id is a short string: 1 to 255 printable ASCII characters, no spaces.
_MESSAGE_ID: Final = re.compile(r"[\x21-\x7e]{1,255}")
_LIMIT: Final = re.compile(r"[0-9]{1,4}")
#: Audit rows keep this much of a User-Agent (as the payment routes do).
_MAX_USER_AGENT: Final = 512

_log = logging.getLogger(__name__)


class RedriveTargetInvalid(ValidationFailed):
    """Give exactly one of {"messageId": "<id>"} or {"all": true}."""

    code = "redrive_target_invalid"


class LimitInvalid(ValidationFailed):
    """The limit must be a whole number from 1 to 500."""

    code = "limit_invalid"


def setup_admin_routes(app: web.Application) -> None:
    """Add the admin routes; the app must hold the values under the four keys above."""
    router = app.router
    router.add_get("/api/v1/admin/dlq", dead_letter_depths, name="admin.dlq")
    router.add_get(f"/api/v1/admin/dlq/{{queue:{_QUEUE_SEGMENT}}}", list_dead_letters, name="admin.dlq.list")
    router.add_post(
        f"/api/v1/admin/dlq/{{queue:{_QUEUE_SEGMENT}}}/redrive",
        redrive_dead_letters,
        name="admin.dlq.redrive",
    )
    router.add_post(
        f"/api/v1/admin/webhooks/{{webhookId:{_WEBHOOK_ID_SEGMENT}}}/reprocess",
        reprocess_stored_webhook,
        name="admin.webhooks.reprocess",
    )


def admin_routes(
    *,
    dead_letters: DeadLetters,
    unit_of_work: UnitOfWorkFactory,
    reprocess_webhook: ReprocessWebhook,
    clock: Clock,
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)`` that stores the dependencies, then adds routes."""

    def setup(app: web.Application) -> None:
        app[DEAD_LETTERS_KEY] = dead_letters
        app[ADMIN_UNIT_OF_WORK_KEY] = unit_of_work
        app[REPROCESS_WEBHOOK_KEY] = reprocess_webhook
        app[ADMIN_CLOCK_KEY] = clock
        setup_admin_routes(app)

    return setup


async def dead_letter_depths(request: web.Request) -> web.Response:
    """``GET /api/v1/admin/dlq``: messages waiting in each work queue's DLQ."""
    require_admin(request)
    dead_letters = request.config_dict[DEAD_LETTERS_KEY]
    depths = [
        {"queue": queue, "messages": await dead_letters.count(queue)} for queue in dead_letters.queues()
    ]
    return web.json_response({"queues": depths})


async def list_dead_letters(request: web.Request) -> web.Response:
    """``GET /api/v1/admin/dlq/{queue}``: up to ``limit`` dead letters, oldest first, left where they are."""
    require_admin(request)
    queue = request.match_info["queue"]
    limit = parse_limit(request.query.get("limit"))
    letters = await request.config_dict[DEAD_LETTERS_KEY].list(queue, limit=limit)
    return web.json_response(
        {"queue": queue, "deadLetters": [dead_letter_json(letter) for letter in letters]}
    )


async def redrive_dead_letters(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/dlq/{queue}/redrive``: move one message, or all, back to the work queue."""
    principal = require_admin(request)
    queue = request.match_info["queue"]
    message_id = parse_redrive_target(await read_json(request))
    dead_letters = request.config_dict[DEAD_LETTERS_KEY]
    # Counting first also answers 404 for an unknown queue before anything moves.
    before = {"deadLetters": await dead_letters.count(queue), "target": message_id or "all"}
    try:
        moved = await dead_letters.redrive(queue, message_id=message_id)
    except RedriveInterrupted as stopped:
        if stopped.moved:
            after = {"redriven": stopped.moved, "interrupted": True}
            await _audit_redrive(request, principal, queue, before, after)
        raise
    await _audit_redrive(request, principal, queue, before, {"redriven": moved})
    return web.json_response({"redriven": moved})


async def reprocess_stored_webhook(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/webhooks/{webhookId}/reprocess``: queue a stored webhook again (202)."""
    principal = require_admin(request)
    webhook_id = int(request.match_info["webhookId"])
    dedup_key = await request.config_dict[REPROCESS_WEBHOOK_KEY](webhook_id)
    before = {"webhookId": webhook_id}
    after = {"webhookId": webhook_id, "dedupKey": dedup_key, "requeued": True}
    await _audit(
        request,
        principal,
        action=REPROCESS_ACTION,
        resource_type=WEBHOOK_RESOURCE,
        resource_id=str(webhook_id),
        before=before,
        after=after,
    )
    return web.json_response({"webhookId": webhook_id, "dedupKey": dedup_key, "status": "queued"}, status=202)


def parse_limit(raw: str | None) -> int:
    """The ``limit`` query parameter: ``DEFAULT_LIST_LIMIT`` when absent, else 1 to ``MAX_LIST_LIMIT``."""
    if raw is None:
        return DEFAULT_LIST_LIMIT
    if _LIMIT.fullmatch(raw) is None or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise LimitInvalid
    return int(raw)


def parse_redrive_target(body: Mapping[str, Any]) -> str | None:
    """The message id to re-drive, or None for all of them; exactly one of the two forms is accepted."""
    if body.keys() == {"all"} and body["all"] is True:
        return None
    if body.keys() == {"messageId"}:
        message_id = body["messageId"]
        if isinstance(message_id, str) and _MESSAGE_ID.fullmatch(message_id) is not None:
            return message_id
    raise RedriveTargetInvalid


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    """How a dead letter looks on the wire: camelCase, masked body and headers."""
    return {
        "messageId": letter.message_id,
        "queue": letter.queue,
        "routingKey": letter.routing_key,
        "bodyPreview": mask_text(letter.body_preview),
        "bodySize": letter.body_size,
        "headers": mask_value(dict(letter.headers)),
        "failures": letter.failures,
        "firstFailedAt": timestamp(letter.first_failed_at) if letter.first_failed_at else None,
        "lastError": mask_text(letter.last_error) if letter.last_error else None,
        "reason": letter.reason,
        "deadLetteredBy": letter.dead_lettered_by.value,
    }


async def _audit_redrive(
    request: web.Request,
    principal: Principal,
    queue: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    await _audit(
        request,
        principal,
        action=REDRIVE_ACTION,
        resource_type=QUEUE_RESOURCE,
        resource_id=queue,
        before=before,
        after=after,
    )


async def _audit(
    request: web.Request,
    principal: Principal,
    *,
    action: str,
    resource_type: str,
    resource_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    trace = request[TRACE_KEY]
    user_agent = request.headers.get(hdrs.USER_AGENT)
    entry = AuditEntry(
        actor_id=principal.user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before_state=before,
        after_state=after,
        ip_address=client_ip(request),
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        trace_id=trace.trace_id,
        request_id=trace.request_id,
        created_at=request.config_dict[ADMIN_CLOCK_KEY].now(),
    )
    _log.info("%s on %s %s by %s: %s", action, resource_type, resource_id, principal.user_id, dict(after))
    try:
        async with request.config_dict[ADMIN_UNIT_OF_WORK_KEY]() as uow:
            await uow.audit.append(entry)
    except Exception:
        # The action has happened and cannot be undone; this line is then its only record.
        _log.error("the audit row of %s on %s %s could not be written", action, resource_type, resource_id)
        raise

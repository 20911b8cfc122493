"""Webhook ingest: ``POST /api/v1/webhooks/cashfree`` (issue 5 §1; DESIGN §5.1, §8).

The handler checks and queues, nothing else (no database, no gateway call), so it answers in
milliseconds:

1. the source address, when an allow-list is configured (403 ``forbidden_source``);
2. the raw body, read up to ``webhook_max_body_bytes`` and no further (413 ``payload_too_large``);
3. the signature and timestamp over those exact bytes, then the event's identity (401, 400);
4. the dedup key: a delivery already queued, or being queued, is answered 200 ``duplicate``;
5. the delivery, intact, published to ``webhook.exchange`` with a publisher confirm: 200 ``accepted``.

Redis or the broker unavailable means 503, with the key released, so Cashfree's retry is queued rather
than taken for a duplicate: a delivery answered 200 is never lost, and one answered otherwise leaves
nothing that blocks its retry (DESIGN §5.1). Success is always exactly 200, the only status Cashfree
counts as delivered (FACTS §7).

The route reads ``GATEWAY_WEBHOOKS_KEY``, ``WEBHOOK_DEDUP_KEY``, ``WEBHOOK_PUBLISHER_KEY``,
``WEBHOOK_INGEST_KEY`` and ``WEBHOOK_CLOCK_KEY`` (``webhook_routes`` sets them) and the app's
``METRICS_KEY``. The auth middleware leaves it alone: it is under ``/api/v1/webhooks/``.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aiohttp import hdrs, web
from prometheus_client import Counter, Histogram

from payments.domain.clock import Clock, SystemClock
from payments.domain.errors import DependencyUnavailable, InvalidPayload, Unauthenticated
from payments.domain.webhook.dedup import WebhookDedup
from payments.domain.webhook.intake import GatewayWebhooks, ReceivedWebhook, WebhookIdentity, body_hash
from payments.pipeline.logging import mask_text
from payments.pipeline.publishing import Publisher
from payments.pipeline.settings import CashfreeSettings
from payments.pipeline.topology import Exchange
from payments.web.client_ip import client_ip
from payments.web.keys import (
    GATEWAY_WEBHOOKS_KEY,
    METRICS_KEY,
    WEBHOOK_CLOCK_KEY,
    WEBHOOK_DEDUP_KEY,
    WEBHOOK_INGEST_KEY,
    WEBHOOK_PUBLISHER_KEY,
)
from payments.web.middlewares import error_response

CASHFREE_WEBHOOK_PATH: Final = "/api/v1/webhooks/cashfree"
CASHFREE_WEBHOOK_ROUTE: Final = "webhooks.cashfree"
#: Where ingest puts deliveries; the webhook agent's queue (``topology.WEBHOOKS_RECEIVED``) is bound to it.
RECEIVED_ROUTING_KEY: Final = "webhook.cashfree.received"
#: The delivery headers that travel with the body: what the agent needs to re-verify, parse by version
#: and log. Nothing else is kept (cookies, proxies' headers and the like are not the event).
KEPT_HEADERS: Final = (
    "x-webhook-signature",
    "x-webhook-timestamp",
    "x-webhook-version",
    "x-webhook-attempt",
    "x-idempotency-key",
    "content-type",
    "user-agent",
)
#: For senders that honour it; Cashfree retries on its own schedule (2, 10 and 30 minutes).
RETRY_AFTER_SECONDS: Final = 60
#: RFC 9110 §11.6.1: a 401 names how to authenticate; here, by signing the body.
_WWW_AUTHENTICATE: Final = 'Signature realm="cashfree-webhooks"'

#: Code points that UTF-8 cannot carry (see ``_text``).
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class IngestOutcome(StrEnum):
    """How ingest answered a delivery; the ``outcome`` label of the webhook metrics."""

    ACCEPTED = "accepted"  #: queued with a broker confirm (200)
    DUPLICATE = "duplicate"  #: already queued or being queued; nothing published (200)
    INVALID_SIGNATURE = "invalid_signature"  #: bad or missing signature, stale or future timestamp (401)
    MALFORMED = "malformed"  #: genuinely signed, but not an event of the gateway (400)
    FORBIDDEN_SOURCE = "forbidden_source"  #: the sender's address is outside the allow-list (403)
    TOO_LARGE = "too_large"  #: the body is over the webhook limit (413)
    UNAVAILABLE = "unavailable"  #: Redis or the broker did not answer; Cashfree will retry (503)


#: The 200 answers' bodies, serialised once: ``{"status": "accepted"}`` and ``{"status": "duplicate"}``.
_STATUS_BODIES: Final = {
    outcome: json.dumps({"status": outcome.value})
    for outcome in (IngestOutcome.ACCEPTED, IngestOutcome.DUPLICATE)
}


@dataclass(frozen=True)
class WebhookIngestConfig:
    """The route's limits, parsed once from ``CashfreeSettings``."""

    #: The largest body read; a bigger one is refused without reading the rest.
    max_body_bytes: int
    #: Sender networks allowed to deliver; empty allows any (the signature is the real check).
    allowed_sources: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, cashfree: CashfreeSettings) -> WebhookIngestConfig:
        networks = tuple(
            ipaddress.ip_network(source, strict=False) for source in cashfree.webhook_allowed_sources
        )
        return cls(max_body_bytes=cashfree.webhook_max_body_bytes, allowed_sources=networks)

    def admits(self, remote: str | None) -> bool:
        """Whether a sender at ``remote`` (the peer's IP address) may deliver webhooks."""
        if not self.allowed_sources:
            return True
        address = _ip_address(remote)
        return address is not None and any(address in network for network in self.allowed_sources)


def webhook_routes(
    *,
    webhooks: GatewayWebhooks,
    dedup: WebhookDedup,
    publisher: Publisher,
    config: WebhookIngestConfig,
    clock: Clock | None = None,
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)``: stores the dependencies, then adds the route."""

    def setup(app: web.Application) -> None:
        app[GATEWAY_WEBHOOKS_KEY] = webhooks
        app[WEBHOOK_DEDUP_KEY] = dedup
        app[WEBHOOK_PUBLISHER_KEY] = publisher
        app[WEBHOOK_INGEST_KEY] = config
        app[WEBHOOK_CLOCK_KEY] = clock if clock is not None else SystemClock()
        setup_webhook_routes(app)

    return setup


def setup_webhook_routes(app: web.Application) -> None:
    """Add the webhook route; the app must hold the values under the keys named in the module docstring."""
    app.router.add_post(CASHFREE_WEBHOOK_PATH, receive_cashfree_webhook, name=CASHFREE_WEBHOOK_ROUTE)


@dataclass(frozen=True)
class _Answer:
    outcome: IngestOutcome
    response: web.Response


async def receive_cashfree_webhook(request: web.Request) -> web.Response:
    """``POST /api/v1/webhooks/cashfree``: 200 once the delivery is queued (or known), else why not."""
    started = time.perf_counter()
    webhooks = request.config_dict[GATEWAY_WEBHOOKS_KEY]
    answer = await _ingest(request, webhooks)
    metrics = request.config_dict[METRICS_KEY]
    received, duration = _outcome_series(
        metrics.webhooks_received, metrics.webhook_ingest_duration, webhooks.provider, answer.outcome
    )
    received.inc()
    duration.observe(time.perf_counter() - started)
    return answer.response


@functools.lru_cache(maxsize=64)
def _outcome_series(
    received: Counter, duration: Histogram, provider: str, outcome: IngestOutcome
) -> tuple[Counter, Histogram]:
    # ``labels()`` checks the names and takes a lock on every call; the series of one (provider,
    # outcome) never change, so each is looked up once (a handful per process: the outcomes are few).
    return (
        received.labels(provider=provider, outcome=outcome.value),
        duration.labels(provider=provider, outcome=outcome.value),
    )


async def _ingest(request: web.Request, webhooks: GatewayWebhooks) -> _Answer:
    config = request.config_dict[WEBHOOK_INGEST_KEY]
    if config.allowed_sources:  # without an allow-list every source is admitted: no address to work out
        refused = _refused_source(request, config)
        if refused is not None:
            return refused
    body = await read_body(request, limit=config.max_body_bytes)
    if body is None:
        _log.warning("webhook refused: body over %d bytes", config.max_body_bytes)
        return _refusal(IngestOutcome.TOO_LARGE, 413, "payload_too_large", "The request body is too large.")
    try:
        identity = webhooks.authenticate(body, request.headers)
    except Unauthenticated as refused:
        return _unauthenticated(refused)
    except InvalidPayload as malformed:
        _log.warning("webhook refused: %s", malformed.reason, extra={"reason": malformed.reason})
        return _refusal(IngestOutcome.MALFORMED, 400, "malformed_webhook", mask_text(malformed.message))
    message = received_webhook(request, webhooks.provider, identity, body)
    return await _queue(request, message)


def _refused_source(request: web.Request, config: WebhookIngestConfig) -> _Answer | None:
    # The TCP peer, or what a TRUSTED_PROXIES proxy says the peer was: anyone else can send
    # X-Forwarded-For, and believing it would let any sender claim Cashfree's address.
    source = client_ip(request)
    if config.admits(source):
        return None
    _log.warning("webhook refused: its source is not in the allow-list", extra={"remote": source})
    return _refusal(
        IngestOutcome.FORBIDDEN_SOURCE, 403, "forbidden_source", "This source may not deliver webhooks."
    )


async def read_body(request: web.Request, *, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to be longer than ``limit`` bytes.

    The stream is read directly, not with ``request.read()``: that would apply the app's general
    ``client_max_size`` instead of this route's limit. A declared Content-Length over the limit is
    refused before reading anything, and a chunked body is never read past ``limit + 1`` bytes.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        return None
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def received_webhook(
    request: web.Request, provider: str, identity: WebhookIdentity, body: bytes
) -> ReceivedWebhook:
    """The message ingest publishes: the exact bytes, their hash, the kept headers and the receive time."""
    return ReceivedWebhook(
        provider=provider,
        dedup_key=identity.dedup_key,
        event_type=_text(identity.event_type),
        version=_text(identity.version) if identity.version is not None else None,
        body_b64=base64.b64encode(body).decode("ascii"),
        body_hash=body_hash(body),
        headers=kept_headers(request.headers),
        received_at=request.config_dict[WEBHOOK_CLOCK_KEY].now(),
    )


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``KEPT_HEADERS`` the delivery carried, by lower-case name (``headers`` is case-insensitive)."""
    return {name: _text(headers[name]) for name in KEPT_HEADERS if name in headers}


async def _queue(request: web.Request, message: ReceivedWebhook) -> _Answer:
    dedup, key = request.config_dict[WEBHOOK_DEDUP_KEY], message.dedup_key
    try:
        first = await dedup.claim(key)
    except DependencyUnavailable as error:
        return _unavailable(error)
    if not first:
        _log.info(
            "duplicate webhook %s answered without queueing", message.event_type, extra={"dedupKey": key}
        )
        return _Answer(IngestOutcome.DUPLICATE, _status(IngestOutcome.DUPLICATE))
    try:
        await _publish(request.config_dict[WEBHOOK_PUBLISHER_KEY], message)
    except DependencyUnavailable as error:
        await _release(dedup, key)
        return _unavailable(error)
    except BaseException:
        # A bug, or the task cancelled mid-publish: whatever happened, the key must not block the retry.
        await _release(dedup, key)
        raise
    await _confirm(dedup, key)
    # DEBUG: one line per webhook is the start of its trace when following one; too many to keep at INFO.
    _log.debug("webhook %s queued", message.event_type, extra={"dedupKey": key})
    return _Answer(IngestOutcome.ACCEPTED, _status(IngestOutcome.ACCEPTED))


async def _publish(publisher: Publisher, message: ReceivedWebhook) -> None:
    await publisher.publish(
        exchange=Exchange.WEBHOOK.value,
        routing_key=RECEIVED_ROUTING_KEY,
        body=message.model_dump_json().encode("utf-8"),
        message_id=message.dedup_key,
        message_type=RECEIVED_ROUTING_KEY,
        timestamp=message.received_at,
    )


async def _release(dedup: WebhookDedup, key: str) -> None:
    try:
        await dedup.release(key)
    except DependencyUnavailable as error:
        # The pending mark then expires by itself (PENDING_TTL_SECONDS), before Cashfree's first retry.
        _log.warning("could not release a webhook dedup key: %s", error.message)


async def _confirm(dedup: WebhookDedup, key: str) -> None:
    try:
        await dedup.confirm(key)
    except DependencyUnavailable as error:
        # The event is on the queue, so the answer stays 200. The pending mark expires, and a later
        # redelivery is queued again, which the agent's inbox makes harmless.
        _log.warning("could not confirm a webhook dedup key: %s", error.message)


def _unauthenticated(refused: Unauthenticated) -> _Answer:
    # The bridge's error carries a closed-set ``reason`` (missing_signature, stale_timestamp...); web
    # may not import bridges, so it is read by name. The signature and the body are never logged.
    reason = str(getattr(refused, "reason", refused.code))
    _log.warning("webhook refused: %s", reason, extra={"reason": reason})
    return _refusal(
        IngestOutcome.INVALID_SIGNATURE,
        401,
        refused.code,
        mask_text(refused.message),
        headers={hdrs.WWW_AUTHENTICATE: _WWW_AUTHENTICATE},
    )


def _unavailable(error: DependencyUnavailable) -> _Answer:
    _log.warning("webhook not queued, answering 503: %s", error.message)
    retry_after = RETRY_AFTER_SECONDS if error.defer is None else max(1, round(error.defer))
    # The error's own message may name hosts; the client gets the class's default.
    response = error_response(
        503,
        error.code,
        "A service we depend on is unavailable; deliver the webhook again later.",
        headers={hdrs.RETRY_AFTER: str(retry_after)},
    )
    return _Answer(IngestOutcome.UNAVAILABLE, response)


def _refusal(
    outcome: IngestOutcome, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
) -> _Answer:
    return _Answer(outcome, error_response(status, code, message, headers=headers))


def _status(outcome: IngestOutcome) -> web.Response:
    # Exactly 200, never 201 or 202: Cashfree counts only 200 as delivered (FACTS §7).
    return web.Response(text=_STATUS_BODIES[outcome], status=200, content_type="application/json")


def _ip_address(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return None  # a Unix socket or anything else that is not an IP: no network contains it
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return address


def _text(value: str) -> str:
    # Header values arrive with undecodable bytes as surrogate escapes, and a JSON "\ud800" escape is a
    # lone surrogate: neither can be written as UTF-8, so both become U+FFFD in the message.
    return _SURROGATE.sub("\ufffd", value)

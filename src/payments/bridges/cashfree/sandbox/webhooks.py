"""Webhook delivery: an outbox of signed deliveries with Cashfree's retries, and its sender.

A delivery is tried at once, then retried 2, 10 and 30 sandbox minutes after the previous attempt
(FACTS §7 leaves open whether they count from the first attempt; the sandbox counts from the previous
one), then given up. Any 2xx counts as delivered. Each attempt is signed afresh:
``x-webhook-timestamp`` is the real wall-clock time of sending in milliseconds, since the receiver
checks freshness against its own clock; the attempt's sandbox time is what the listing records.
Deliveries go out one at a time in creation order (newest first under the reorder fault).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp

from payments.bridges.cashfree.sandbox.clock import IST
from payments.bridges.cashfree.sandbox.faults import FaultSettings
from payments.bridges.cashfree.sandbox.states import (
    DELIVERY_TRANSITIONS,
    DeliveryState,
    DeliveryTrigger,
    transition,
)
from payments.bridges.cashfree.signature import sign

#: Waits before the first, second and third retry (Cashfree's default schedule).
RETRY_DELAYS: Final = (timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
#: Real seconds a receiver gets to answer one attempt.
SEND_TIMEOUT_SECONDS: Final = 5.0
#: The first payload version that carries ``x-idempotency-key``.
IDEMPOTENCY_HEADER_SINCE: Final = "2025-01-01"


@dataclass(frozen=True)
class DeliveryAttempt:
    number: int
    sent_at: datetime  #: sandbox time
    status: int | None  #: the receiver's HTTP status; None when it could not be reached
    error: str | None = None


@dataclass(frozen=True)
class OutgoingWebhook:
    """A rendered event, ready to queue."""

    kind: str  #: the envelope's ``type``
    order_id: str | None
    notify_url: str | None  #: the order's own URL; None sends to the configured default
    body: bytes


@dataclass
class Delivery:
    """One webhook to one URL; ``body`` is fixed, so every retry sends the same bytes."""

    delivery_id: int
    event_type: str
    order_id: str | None
    url: str
    body: bytes
    idempotency_key: str
    created_at: datetime
    state: DeliveryState
    due_at: datetime | None
    attempts: list[DeliveryAttempt] = field(default_factory=list)

    def listing(self) -> dict[str, Any]:
        """How ``GET /_sandbox/webhooks`` shows it."""
        return {
            "id": self.delivery_id,
            "event_type": self.event_type,
            "order_id": self.order_id,
            "url": self.url,
            "idempotency_key": self.idempotency_key,
            "state": self.state.value,
            "created_at": _listed(self.created_at),
            "next_attempt_at": _listed(self.due_at) if self.due_at else None,
            "attempts": [
                {
                    "number": a.number,
                    "sent_at": _listed(a.sent_at),
                    "status": a.status,
                    "error": a.error,
                }
                for a in self.attempts
            ],
        }


def _listed(moment: datetime) -> str:
    # Milliseconds, unlike Cashfree's bodies, so tests can measure the retry gaps.
    return moment.astimezone(IST).isoformat(timespec="milliseconds")


class WebhookOutbox:
    """Every delivery the sandbox has made or will make, in creation order."""

    def __init__(self, default_url: str) -> None:
        self._default_url = default_url
        self._ids = itertools.count(1)
        self.deliveries: list[Delivery] = []
        #: Deliveries still pending or withheld, by id (in creation order), so ticks skip finished ones.
        self._open: dict[int, Delivery] = {}

    def enqueue(self, webhook: OutgoingWebhook, now: datetime, faults: FaultSettings) -> None:
        """Queue a delivery of ``webhook``; two under the duplicate fault, withheld under withhold."""
        # One stable key per distinct event: a hash of its body, which every retry and duplicate shares.
        key = base64.b64encode(hashlib.sha256(webhook.body).digest()).decode()
        state = DeliveryState.WITHHELD if faults.withhold_webhooks else DeliveryState.PENDING
        due = None if state is DeliveryState.WITHHELD else now
        url = webhook.notify_url or self._default_url
        for _ in range(2 if faults.duplicate_webhooks else 1):
            delivery = Delivery(
                next(self._ids), webhook.kind, webhook.order_id, url, webhook.body, key, now, state, due
            )
            self.deliveries.append(delivery)
            self._open[delivery.delivery_id] = delivery

    def due(self, now: datetime, *, newest_first: bool) -> list[Delivery]:
        due = [
            d
            for d in self._open.values()
            if d.state is DeliveryState.PENDING and d.due_at and d.due_at <= now
        ]
        return due[::-1] if newest_first else due

    def record(self, delivery: Delivery, attempt: DeliveryAttempt) -> None:
        """Note an attempt's result and decide: delivered, retry later, or give up."""
        delivery.attempts.append(attempt)
        retries_done = len(delivery.attempts) - 1
        if attempt.status is not None and 200 <= attempt.status < 300:
            trigger, delivery.due_at = DeliveryTrigger.SUCCEED, None
        elif retries_done >= len(RETRY_DELAYS):
            trigger, delivery.due_at = DeliveryTrigger.GIVE_UP, None
        else:
            trigger, delivery.due_at = DeliveryTrigger.RETRY, attempt.sent_at + RETRY_DELAYS[retries_done]
        delivery.state = transition(DELIVERY_TRANSITIONS, delivery.state, trigger)
        if delivery.due_at is None:
            del self._open[delivery.delivery_id]

    def release(self, now: datetime) -> int:
        """Make every withheld delivery due now; how many there were."""
        withheld = [d for d in self._open.values() if d.state is DeliveryState.WITHHELD]
        for delivery in withheld:
            delivery.state = transition(DELIVERY_TRANSITIONS, delivery.state, DeliveryTrigger.RELEASE)
            delivery.due_at = now
        return len(withheld)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class WebhookSender:
    """Signs and POSTs one attempt of a delivery."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        secret: str,
        version: str,
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._session = session
        self._secret = secret
        self._version = version
        self._wall_ms = wall_ms

    def headers(self, delivery: Delivery, number: int) -> dict[str, str]:
        timestamp = str(self._wall_ms())
        headers = {
            "content-type": "application/json",
            "x-webhook-signature": sign(self._secret, timestamp, delivery.body),
            "x-webhook-timestamp": timestamp,
            "x-webhook-version": self._version,
            "x-webhook-attempt": str(number),
        }
        if self._version >= IDEMPOTENCY_HEADER_SINCE:
            headers["x-idempotency-key"] = delivery.idempotency_key
        return headers

    async def send(self, delivery: Delivery, number: int) -> tuple[int | None, str | None]:
        """``(status, None)`` when the receiver answered, ``(None, error)`` when it could not be reached."""
        timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
        try:
            async with self._session.post(
                delivery.url, data=delivery.body, headers=self.headers(delivery, number), timeout=timeout
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError) as error:
            return None, f"{type(error).__name__}: {error}"

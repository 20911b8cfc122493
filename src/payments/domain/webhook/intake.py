"""What the product needs from a gateway's webhooks, in our terms (Cashfree's bridge implements it).

The ingest route only authenticates and identifies a delivery (``authenticate``): that is all it
may do in its few milliseconds. The webhook agent reads the full notification later (``read``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from payments.domain.webhook.notification import GatewayNotification


@dataclass(frozen=True)
class WebhookIdentity:
    """Who a verified delivery is: enough to deduplicate and route it without parsing it fully."""

    #: Stable across redeliveries of the same event (``webhook:event:{dedup_key}``).
    dedup_key: str
    #: The gateway's event type string (for logs and metrics labels after bucketing).
    event_type: str
    #: The payload version the gateway says it used, if it said.
    version: str | None


class GatewayWebhooks(Protocol):
    """One gateway's webhooks."""

    #: The gateway's name, stored with each webhook log row (``cashfree``).
    provider: str
    #: Payload versions this code understands; a delivery in another is parked, never dropped.
    known_versions: frozenset[str]

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> WebhookIdentity:
        """Verify the signature and freshness, then identify the event.

        Raises ``Unauthenticated`` (bad or missing signature, stale or future timestamp) or
        ``InvalidPayload`` (not an event of this gateway); never reads anything but the raw bytes.
        """
        ...

    def read(self, body: bytes, headers: Mapping[str, str]) -> GatewayNotification:
        """The notification in domain terms (the body was authenticated at ingest)."""
        ...


class ReceivedWebhook(BaseModel):
    """What ingest puts on ``webhook.exchange`` (``webhook.cashfree.received``): the delivery, intact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str
    dedup_key: str = Field(min_length=1, max_length=200)
    event_type: str
    version: str | None = None
    #: The raw body, base64: exactly the bytes that were signed.
    body_b64: str
    #: SHA-256 (hex) of the raw body.
    body_hash: str
    #: The delivery's headers we keep (signature, timestamp, version, attempt, idempotency key...).
    headers: dict[str, str]
    received_at: datetime

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.body_b64)


def body_hash(body: bytes) -> str:
    """The request hash stored with every webhook (SHA-256, hex)."""
    return hashlib.sha256(body).hexdigest()

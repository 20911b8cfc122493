"""The webhook log: every delivery as received, and how its processing went (REQUIREMENTS §14)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from payments.domain.errors import IllegalTransition
from payments.domain.webhook.intake import ReceivedWebhook


class WebhookStatus(StrEnum):
    RECEIVED = "RECEIVED"  #: stored; not yet handled
    PROCESSING = "PROCESSING"  #: an agent is on it (again, after a retry)
    SUCCESS = "SUCCESS"  #: applied, or recorded when there is nothing to apply; final
    FAILED = "FAILED"  #: gave up (dead-lettered or refused); an admin may reprocess it


#: (from, to) pairs a webhook log may take. SUCCESS is final: a redelivery of a processed event is a
#: no-op. FAILED goes back to RECEIVED only when an operator reprocesses it.
WEBHOOK_TRANSITIONS: Final = frozenset(
    {
        (WebhookStatus.RECEIVED, WebhookStatus.PROCESSING),
        (WebhookStatus.PROCESSING, WebhookStatus.PROCESSING),
        (WebhookStatus.FAILED, WebhookStatus.PROCESSING),
        (WebhookStatus.PROCESSING, WebhookStatus.SUCCESS),
        (WebhookStatus.PROCESSING, WebhookStatus.FAILED),
        (WebhookStatus.FAILED, WebhookStatus.RECEIVED),
        (WebhookStatus.SUCCESS, WebhookStatus.RECEIVED),
    }
)


def check_transition(current: WebhookStatus, target: WebhookStatus) -> None:
    if (current, target) not in WEBHOOK_TRANSITIONS:
        raise IllegalTransition(f"a webhook log cannot go from {current.value} to {target.value}")


@dataclass(frozen=True, kw_only=True)
class WebhookLog:
    id: int
    event_id: str
    provider: str
    event_type: str | None
    api_version: str | None
    order_id: str | None
    payload: Mapping[str, Any] | None
    raw_body: str
    headers: Mapping[str, str]
    signature: str | None
    hash: str
    retry_count: int
    status: WebhookStatus
    failure_reason: str | None
    received_at: datetime
    processed_at: datetime | None

    def as_received(self) -> ReceivedWebhook:
        """The delivery again, as ingest queued it: how an operator reprocesses it."""
        return ReceivedWebhook(
            provider=self.provider,
            dedup_key=self.event_id,
            event_type=self.event_type or "",
            version=self.api_version,
            body_b64=base64.b64encode(self.raw_body.encode("utf-8")).decode("ascii"),
            body_hash=self.hash,
            headers=dict(self.headers),
            received_at=self.received_at,
        )


class WebhookLogRepository(Protocol):
    async def record(self, received: ReceivedWebhook) -> WebhookLog:
        """The log row of this delivery, inserted as RECEIVED the first time (one row per event)."""
        ...

    async def get(self, webhook_id: int) -> WebhookLog:
        """By id, or ``NotFound``."""
        ...

    async def move(
        self,
        log: WebhookLog,
        status: WebhookStatus,
        *,
        now: datetime,
        reason: str | None = None,
        order_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> WebhookLog:
        """Move the row (guarded on the status read: ``ConcurrentTransition`` if it changed)."""
        ...

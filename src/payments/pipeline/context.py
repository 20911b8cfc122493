"""The typed context every agent and scheduled job receives (never a dict, never the app)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from payments.domain.alerts.rules import QueueGauge
from payments.domain.clock import Clock
from payments.domain.errors import PaymentsError
from payments.domain.fraud.screen import Digest
from payments.domain.gateway import PaymentGateway
from payments.domain.invoice.document import InvoiceRenderer
from payments.domain.locks import PaymentLocks
from payments.domain.notification.rendering import EmailRenderer
from payments.domain.notification.sending import EmailSender
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.domain.webhook.intake import GatewayWebhooks
from payments.pipeline.error_status import status_for
from payments.pipeline.metrics import Metrics
from payments.pipeline.settings import Settings
from payments.pipeline.stream import Event
from payments.tables.store import WindowStore

__all__ = ["AgentContext", "Replies", "UnitOfWorkFactory"]

logger = logging.getLogger(__name__)


class Replies(Protocol):
    async def reply(self, *, reply_to: str, correlation_id: str, body: bytes) -> None:
        """Answer a request; best effort (the requester may have given up and answered 202)."""
        ...


@dataclass(frozen=True, kw_only=True)
class AgentContext:
    """What an agent may use; built once per worker by ``pipeline/bootstrap.py``.

    Later capabilities add their gateways and tables here as typed fields.
    """

    #: Opens one database transaction (commit on normal exit, rollback on exception).
    unit_of_work: UnitOfWorkFactory
    clock: Clock
    metrics: Metrics
    settings: Settings
    gateway: PaymentGateway
    #: Reads the gateway's webhooks (authenticated at ingest) in domain terms.
    webhooks: GatewayWebhooks
    locks: PaymentLocks
    replies: Replies
    #: Where windowed tables keep their state (Redis; memory in unit tests).
    tables: WindowStore
    #: Keyed digests of emails and phones, for counting them without keeping them.
    digest: Digest
    #: The depth of the broker's work and dead-letter queues (overload and DLQ growth alerts).
    queues: QueueGauge
    #: Sends email (SMTP).
    mailer: EmailSender
    #: Renders each kind of email from its template.
    email_renderer: EmailRenderer
    #: Draws invoice PDFs.
    invoice_renderer: InvoiceRenderer

    async def answer(
        self,
        event: Event[Any],
        *,
        result: Mapping[str, Any] | None = None,
        error: PaymentsError | None = None,
    ) -> None:
        """Reply to the request ``event`` carries, if it carries one: the result, or the error."""
        if not (event.reply_to and event.correlation_id):
            return
        body: dict[str, Any] = {"result": dict(result or {}), "error": None}
        if error is not None:
            body["error"] = {"code": error.code, "message": error.message, "status": status_for(error)}
        payload = json.dumps(body, default=str).encode()
        await self.replies.reply(reply_to=event.reply_to, correlation_id=event.correlation_id, body=payload)

"""An ``AgentContext`` built from behavioural fakes, for unit tests of agents and the runtime."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.signature import WebhookVerifier
from payments.bridges.documents.invoice_pdf import InvoicePdf
from payments.bridges.templates.renderer import JinjaEmailRenderer
from payments.domain.alerts.rules import QueueDepth
from payments.pipeline import metrics as metrics_module
from payments.pipeline.context import AgentContext
from payments.pipeline.settings import load_settings
from payments.tables.memory import MemoryWindowStore
from tests.fakes.emails import RecordingMailer
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.storage import InMemoryStore

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: The webhook secret of the fake context: sign test deliveries with it.
WEBHOOK_SECRET = "fake-context-webhook-secret"


@dataclass
class RecordingReplies:
    """Remembers every reply an agent sent."""

    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def reply(self, *, reply_to: str, correlation_id: str, body: bytes) -> None:
        self.sent.append((reply_to, correlation_id, body))


def _now_ms() -> int:
    return int(NOW.timestamp() * 1000)


@dataclass
class ScriptedQueueGauge:
    """A ``QueueGauge`` whose depths a test sets between polls."""

    current: list[QueueDepth] = field(default_factory=list)

    async def depths(self) -> Sequence[QueueDepth]:
        return list(self.current)


def fake_digest(value: str, *, kind: str) -> str:
    """A stand-in for the keyed digest: stable, and never the value itself."""
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()[:32]


def fake_context(**overrides: Any) -> AgentContext:
    store = overrides.pop("store", None) or InMemoryStore()
    fields: dict[str, Any] = {
        "unit_of_work": store.unit_of_work,
        "clock": FixedClock(NOW),
        "metrics": metrics_module.create(CollectorRegistry()),
        "settings": load_settings({}),
        "gateway": InMemoryGateway(now=NOW),
        "webhooks": CashfreeWebhooks(
            WebhookVerifier(
                [WEBHOOK_SECRET], tolerance_seconds=300, now_ms=lambda: int(NOW.timestamp() * 1000)
            )
        ),
        "locks": InMemoryPaymentLocks(),
        "replies": RecordingReplies(),
        "tables": MemoryWindowStore(),
        "digest": fake_digest,
        "queues": ScriptedQueueGauge(),
        "mailer": RecordingMailer(),
        # The real renderers: pure functions of their input, so no fake is needed.
        "email_renderer": JinjaEmailRenderer(),
        "invoice_renderer": InvoicePdf(),
    }
    fields.update(overrides)
    return AgentContext(**fields)

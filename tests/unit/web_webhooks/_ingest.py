"""Webhook ingest over the real app factory, the real ``CashfreeWebhooks`` and behavioural fakes.

The verifier's clock is fixed at ``SENT_MS``, so a delivery signed "now" is fresh and one signed
``TOLERANCE_SECONDS`` away is not, without waiting. Dedup and broker are the in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.signature import WebhookVerifier, sign
from payments.pipeline import metrics
from payments.pipeline.settings import CashfreeSettings, Settings
from payments.web.app import WebDependencies, create_app
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH, WebhookIngestConfig, webhook_routes
from tests.fakes.broker import RecordingPublisher
from tests.fakes.gateway import FixedClock
from tests.fakes.webhook_dedup import InMemoryWebhookDedup
from tests.unit._web_support import healthy_probes
from tests.unit.cashfree_webhooks._samples import HEADERS_2023, HEADERS_2025, PAYMENT_SUCCESS_2025

SECRET = "cf_test_secret_0123456789"
SENT_MS = 1_764_151_200_000  # 2025-11-26T10:00:00Z
TOLERANCE_SECONDS = 300
RECEIVED_AT = datetime(2025, 11, 26, 10, 0, 1, tzinfo=UTC)
PATH = CASHFREE_WEBHOOK_PATH

#: A 2025-01-01 payment success: its dedup key comes from the x-idempotency-key header.
BODY = PAYMENT_SUCCESS_2025
DEDUP_KEY = f"cashfree:idem:{HEADERS_2025['x-idempotency-key']}"


def signed(
    body: bytes = BODY,
    *,
    secret: str = SECRET,
    sent_ms: int = SENT_MS,
    extra: dict[str, str] | None = None,
    version_headers: dict[str, str] = HEADERS_2025,
) -> dict[str, str]:
    """The headers Cashfree sends with ``body`` signed by ``secret`` at ``sent_ms``."""
    timestamp = str(sent_ms)
    return {
        **version_headers,
        "x-webhook-timestamp": timestamp,
        "x-webhook-signature": sign(secret, timestamp, body),
        "user-agent": "ReactorNetty/1.0.39",
        **(extra or {}),
    }


def signed_2023(body: bytes, **kwargs: Any) -> dict[str, str]:
    """A 2023-08-01 delivery: no x-idempotency-key, so the key is derived from the body."""
    return signed(body, version_headers=HEADERS_2023, **kwargs)


@dataclass
class Ingest:
    """Everything one test's app is built from, kept so the test can look inside afterwards."""

    settings: Settings
    registry: CollectorRegistry
    dedup: InMemoryWebhookDedup
    publisher: RecordingPublisher
    clock: FixedClock

    @classmethod
    def build(cls, settings: Settings | None = None) -> Ingest:
        return cls(
            settings=settings if settings is not None else Settings(),
            registry=CollectorRegistry(),
            dedup=InMemoryWebhookDedup(),
            publisher=RecordingPublisher(),
            clock=FixedClock(RECEIVED_AT),
        )

    def app(self) -> web.Application:
        verifier = WebhookVerifier([SECRET], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: SENT_MS)
        deps = WebDependencies(
            settings=self.settings,
            metrics=metrics.create(self.registry),
            registry=self.registry,
            probes=healthy_probes(),
        )
        routes = webhook_routes(
            webhooks=CashfreeWebhooks(verifier),
            dedup=self.dedup,
            publisher=self.publisher,
            config=WebhookIngestConfig.from_settings(self.settings.cashfree),
            clock=self.clock,
        )
        return create_app(deps, extra_setups=[routes])

    def count(self, outcome: str) -> float:
        labels = {"provider": "cashfree", "outcome": outcome}
        return self.registry.get_sample_value("payments_webhooks_received_total", labels) or 0.0


def with_cashfree(**fields: Any) -> Settings:
    """Default settings with these ``CashfreeSettings`` fields changed."""
    return Settings(cashfree=CashfreeSettings(**fields))

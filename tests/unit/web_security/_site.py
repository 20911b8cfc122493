"""The whole API on one app, as ``pipeline/bootstrap.py`` assembles it, over the in-memory fakes.

``Site`` is the refund API's world (payments and refunds over one store, gateway and bus) plus the
webhook intake, the admin routes (dead letters, alerts with their page and stream, reconciliation)
and Alertmanager's intake, so one app answers every route the attack tests aim at.
``EXPECTED_HEADERS`` is the security header set written out by hand: the tests compare against it,
not against the module that builds it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from payments.bridges.cashfree.intake import CashfreeWebhooks
from payments.bridges.cashfree.signature import WebhookVerifier
from payments.bridges.rabbitmq.alert_feed import AlertFanout
from payments.domain.reconciliation.service import ReconciliationService
from payments.pipeline.settings import Settings, WebSettings
from payments.web.admin import admin_routes
from payments.web.admin_alerts import admin_alert_routes
from payments.web.admin_reconciliation import admin_reconciliation_routes
from payments.web.alertmanager import IntakeOptions, alertmanager_routes
from payments.web.webhooks import WebhookIngestConfig, webhook_routes
from tests.fakes.broker import RecordingPublisher
from tests.fakes.dead_letters import InMemoryDeadLetters
from tests.fakes.webhook_dedup import InMemoryWebhookDedup
from tests.unit.web_admin._admin import StoredWebhooks
from tests.unit.web_refunds._api import RefundWorld
from tests.unit.web_webhooks._ingest import SECRET, SENT_MS, TOLERANCE_SECONDS

#: The general body limit of these tests (the smallest the settings allow), so "just over" is small.
BODY_LIMIT: Final = 2048
ALLOWED_ORIGIN: Final = "https://app.commdesk.example"
OTHER_ORIGIN: Final = "https://evil.example"
DEAD_LETTER_QUEUE: Final = "webhooks.received"

#: Every response's security headers, exactly (docs: ``web/security_headers.py``).
EXPECTED_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "accelerometer=(), autoplay=(), camera=(), display-capture=(), encrypted-media=(), "
        "fullscreen=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), "
        "payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), "
        "sync-xhr=(), usb=(), xr-spatial-tracking=()"
    ),
    "Cache-Control": "no-store",
    "Server": "commdesk-payments",
}
#: The admin page's own policy: its script, style, images and calls to us, nothing else.
ADMIN_PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def site_settings(*, origins: tuple[str, ...] = (), body_limit: int = BODY_LIMIT) -> Settings:
    return Settings(web=WebSettings(max_body_bytes=body_limit, cors_allowed_origins=origins))


class Site(RefundWorld):
    """Every route of the web process, over one in-memory store."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.feed = AlertFanout(buffer=10)
        self.dead_letters = InMemoryDeadLetters([DEAD_LETTER_QUEUE])
        self.dedup = InMemoryWebhookDedup()
        self.publisher = RecordingPublisher()

    def app(self, *extra_setups: Any) -> Any:
        verifier = WebhookVerifier([SECRET], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: SENT_MS)
        webhooks = webhook_routes(
            webhooks=CashfreeWebhooks(verifier),
            dedup=self.dedup,
            publisher=self.publisher,
            config=WebhookIngestConfig.from_settings(self.settings.cashfree),
            clock=self.clock,
        )
        admin = admin_routes(
            dead_letters=self.dead_letters,
            unit_of_work=self.store.unit_of_work,
            reprocess_webhook=StoredWebhooks({}),
            clock=self.clock,
        )
        alerts = admin_alert_routes(feed=self.feed, unit_of_work=self.store.unit_of_work)
        intake = alertmanager_routes(
            unit_of_work=self.store.unit_of_work, options=IntakeOptions(cooldown=timedelta(minutes=15))
        )
        reconciliation = admin_reconciliation_routes(
            service=ReconciliationService(
                unit_of_work=self.store.unit_of_work,
                gateway=self.gateway,
                payments=self.service,
                clock=self.clock,
                settlement_sla=timedelta(hours=72),
                webhook_grace=timedelta(minutes=30),
            ),
            unit_of_work=self.store.unit_of_work,
            clock=self.clock,
        )
        return super().app(webhooks, admin, alerts, intake, reconciliation, *extra_setups)

    def refunds(self) -> dict[str, Any]:
        return self.store.refund_tables.refunds

    def nothing_stored(self) -> bool:
        """No payment, refund, command, idempotent answer or webhook was kept."""
        return (
            self.payments() == {}
            and self.refunds() == {}
            and self.bus.sent == []
            and len(self.idempotency) == 0
            and self.publisher.published == []
        )


def security_headers_of(headers: Any) -> dict[str, str | None]:
    """The expected headers' names, with the values ``headers`` carries (None when one is missing)."""
    return {name: headers.get(name) for name in EXPECTED_HEADERS}

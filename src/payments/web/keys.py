"""Typed keys for what the web app and its requests carry (STYLE §10: no untyped app state).

The value types are imported for the type checker only: ``health`` and ``app`` import these keys,
so importing them back at run time would make a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from payments.domain.clock import Clock
    from payments.domain.idempotency import IdempotencyStore
    from payments.domain.payment.service import PaymentService
    from payments.domain.refund.service import RefundService
    from payments.domain.unit_of_work import UnitOfWorkFactory
    from payments.domain.webhook.dedup import WebhookDedup
    from payments.domain.webhook.intake import GatewayWebhooks
    from payments.pipeline.metrics import Metrics
    from payments.pipeline.publishing import Publisher
    from payments.pipeline.settings import Settings
    from payments.pipeline.tracing import TraceContext
    from payments.web.auth import Principal
    from payments.web.commands import CommandBus
    from payments.web.health import HealthProbes
    from payments.web.webhooks import WebhookIngestConfig

#: The validated settings the app was built with.
SETTINGS_KEY: Final[web.AppKey[Settings]] = web.AppKey("settings")
#: Every metric of the service; the middleware observes request latency on it.
METRICS_KEY: Final[web.AppKey[Metrics]] = web.AppKey("metrics")
#: The registry ``/metrics`` exposes.
REGISTRY_KEY: Final[web.AppKey[CollectorRegistry]] = web.AppKey("registry")
#: The dependency checks behind ``/health/database``, ``/health/redis`` and ``/health/queues``.
PROBES_KEY: Final[web.AppKey[HealthProbes]] = web.AppKey("probes")
#: The installed package version, reported by ``/health``.
VERSION_KEY: Final[web.AppKey[str]] = web.AppKey("version")
#: The trace context of a request, set by the trace middleware.
TRACE_KEY: Final[web.RequestKey[TraceContext]] = web.RequestKey("trace")
#: Who sent a request under ``/api/v1/``, set by the auth middleware once the bearer token checks out.
PRINCIPAL_KEY: Final[web.RequestKey[Principal]] = web.RequestKey("principal")
#: Set by a handler that streams for as long as its client stays (Server-Sent Events): its duration is
#: a session's length, not a latency, and stays out of the request latency histogram.
LONG_LIVED_KEY: Final[web.RequestKey[bool]] = web.RequestKey("long_lived")

#: Reads of single payments, with the owner-or-admin rule (``PaymentService.find``).
PAYMENT_SERVICE_KEY: Final[web.AppKey[PaymentService]] = web.AppKey("payment_service")
#: Sends payment commands to the payments agent and waits for the reply.
COMMAND_BUS_KEY: Final[web.AppKey[CommandBus]] = web.AppKey("command_bus")
#: Remembers Idempotency-Keys and their final answers (Redis in production).
IDEMPOTENCY_STORE_KEY: Final[web.AppKey[IdempotencyStore]] = web.AppKey("idempotency_store")
#: Opens read transactions for the payment history (the service has no paged read).
UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey("unit_of_work")

# The refund routes' own keys (as the admin routes have theirs): the route setups stay independent,
# and bootstrap may hand each its own instances without one setup overwriting the other's.
#: Reads of single refunds, with the payment's owner-or-admin rule (``RefundService.find``).
REFUND_SERVICE_KEY: Final[web.AppKey[RefundService]] = web.AppKey("refund_service")
#: The ownership check of a refund's payment, before anything is sent (``PaymentService.find``).
REFUND_PAYMENTS_KEY: Final[web.AppKey[PaymentService]] = web.AppKey("refund_payments")
#: Sends ``command.refund.initiate`` to the refunds agent and waits for the reply.
REFUND_COMMAND_BUS_KEY: Final[web.AppKey[CommandBus]] = web.AppKey("refund_command_bus")
#: Remembers the initiate's Idempotency-Keys and their final answers.
REFUND_IDEMPOTENCY_KEY: Final[web.AppKey[IdempotencyStore]] = web.AppKey("refund_idempotency")
#: Opens read transactions for a payment's refunds.
REFUND_UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey("refund_unit_of_work")

#: The gateway's webhooks: authenticates and identifies a delivery (``CashfreeWebhooks``).
GATEWAY_WEBHOOKS_KEY: Final[web.AppKey[GatewayWebhooks]] = web.AppKey("gateway_webhooks")
#: The ``webhook:event:{dedup_key}`` marks that answer a redelivery without re-queueing it.
WEBHOOK_DEDUP_KEY: Final[web.AppKey[WebhookDedup]] = web.AppKey("webhook_dedup")
#: Publishes received webhooks to ``webhook.exchange`` with publisher confirms.
WEBHOOK_PUBLISHER_KEY: Final[web.AppKey[Publisher]] = web.AppKey("webhook_publisher")
#: The webhook route's body limit and source allow-list, parsed once from the Cashfree settings.
WEBHOOK_INGEST_KEY: Final[web.AppKey[WebhookIngestConfig]] = web.AppKey("webhook_ingest")
#: Stamps each received webhook's ``received_at``.
WEBHOOK_CLOCK_KEY: Final[web.AppKey[Clock]] = web.AppKey("webhook_clock")

"""Names of everything on the broker, and the shape of the topology (DESIGN §3).

This module is data only: ``bridges/rabbitmq/topology.py`` declares it, agents subscribe to its
``QueueSpec``s, and the outbox relay looks up the exchange of a routing key here. Renaming a queue
here renames it everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Exchange(StrEnum):
    """The five topic exchanges; a routing key's first word names its exchange."""

    PAYMENT = "payment.exchange"  #: payment lifecycle events
    WEBHOOK = "webhook.exchange"  #: Cashfree webhooks received and their processing outcome
    EMAIL = "email.exchange"  #: emails to send
    ANALYTICS = "analytics.exchange"  #: facts for analytics and alerting
    COMMAND = "command.exchange"  #: API commands that move money (request/reply)


#: Every routing key the product publishes, per exchange, exactly as DESIGN §3 lists them.
ROUTING_KEYS: Final[Mapping[Exchange, tuple[str, ...]]] = {
    Exchange.PAYMENT: (
        "payment.created",
        "payment.processing",
        "payment.success",
        "payment.failed",
        "payment.cancelled",
        "payment.refunded",
        "payment.settled",
    ),
    Exchange.WEBHOOK: (
        "webhook.cashfree.received",
        "webhook.cashfree.processing",
        "webhook.cashfree.retry",
        "webhook.cashfree.failed",
        "webhook.cashfree.deadletter",
    ),
    Exchange.EMAIL: (
        "email.payment.success",
        "email.payment.failed",
        "email.payment.refund",
        "email.invoice.generated",
        "email.admin.alert",
    ),
    Exchange.ANALYTICS: (
        "analytics.payment.created",
        "analytics.payment.success",
        "analytics.payment.failed",
        "analytics.refund.created",
        "analytics.webhook.failure",
    ),
    Exchange.COMMAND: (
        "command.payment.create",
        "command.payment.verify",
        "command.refund.initiate",
    ),
}

#: Deliveries of one message (crash loops included) before the broker dead-letters it to the DLQ.
#: A queue argument, so changing it means re-creating the queues: it is a constant, not a setting.
DELIVERY_LIMIT: Final = 20

#: Direct exchange that work queues dead-letter into (delivery limit reached); routes by DLQ name.
DEAD_LETTER_EXCHANGE: Final = "deadletter.exchange"

#: The replay log: a stream bound to every exchange with "#".
EVENT_LOG_STREAM: Final = "events.log"
#: How long and how much of the event log the broker keeps.
EVENT_LOG_MAX_AGE: Final = "30D"
EVENT_LOG_MAX_BYTES: Final = 5 * 1024**3


@dataclass(frozen=True)
class RetryTier:
    """One delay step between failures; a TTL queue that dead-letters back to its work queue."""

    label: str
    delay_seconds: float


#: Failure n (1-based) waits in tier n; the failure after the last tier goes to the DLQ.
RETRY_TIERS: Final[tuple[RetryTier, ...]] = (
    RetryTier("30s", 30.0),
    RetryTier("2m", 120.0),
    RetryTier("10m", 600.0),
    RetryTier("30m", 1800.0),
)


@dataclass(frozen=True)
class Binding:
    exchange: Exchange
    routing_key: str


@dataclass(frozen=True)
class QueueSpec:
    """A durable quorum work queue, owned by one agent, with its retry tiers and dead-letter queue."""

    name: str
    bindings: tuple[Binding, ...] = field(default=())

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, tier: RetryTier) -> str:
        return f"{self.name}.retry.{tier.label}"

    @property
    def retry_queues(self) -> tuple[str, ...]:
        return tuple(self.retry_queue(tier) for tier in RETRY_TIERS)


def _bind(exchange: Exchange, *routing_keys: str) -> tuple[Binding, ...]:
    return tuple(Binding(exchange, key) for key in routing_keys)


WEBHOOKS_RECEIVED: Final = QueueSpec(
    "webhooks.received", _bind(Exchange.WEBHOOK, "webhook.cashfree.received")
)
PAYMENT_COMMANDS: Final = QueueSpec(
    "payments.commands", _bind(Exchange.COMMAND, "command.payment.create", "command.payment.verify")
)
REFUND_COMMANDS: Final = QueueSpec("refunds.commands", _bind(Exchange.COMMAND, "command.refund.initiate"))
EMAILS: Final = QueueSpec("emails.outgoing", _bind(Exchange.EMAIL, "email.#"))
ANALYTICS_EVENTS: Final = QueueSpec("analytics.events", _bind(Exchange.ANALYTICS, "analytics.#"))
FRAUD_PAYMENTS: Final = QueueSpec(
    "fraud.payments", _bind(Exchange.PAYMENT, "payment.created", "payment.success", "payment.failed")
)
#: Payment outcomes, webhook failures and refunds: what the failure-rate and spike alerts count.
ALERTS_PAYMENTS: Final = QueueSpec(
    "alerts.payments",
    (
        *_bind(Exchange.PAYMENT, "payment.success", "payment.failed"),
        *_bind(Exchange.ANALYTICS, "analytics.webhook.failure", "analytics.refund.created"),
    ),
)
#: Successful payments, each to be invoiced once (the invoice then asks for the success email).
INVOICE_PAYMENTS: Final = QueueSpec("invoices.payments", _bind(Exchange.PAYMENT, "payment.success"))
#: Cashfree webhooks again, for the settlement matcher: it acts on settlement events, ignores the rest.
RECONCILIATION_SETTLEMENTS: Final = QueueSpec(
    "reconciliation.settlements", _bind(Exchange.WEBHOOK, "webhook.cashfree.received")
)

#: Every work queue the product declares; `payments topology` declares exactly these.
WORK_QUEUES: Final[tuple[QueueSpec, ...]] = (
    WEBHOOKS_RECEIVED,
    PAYMENT_COMMANDS,
    REFUND_COMMANDS,
    EMAILS,
    ANALYTICS_EVENTS,
    FRAUD_PAYMENTS,
    ALERTS_PAYMENTS,
    INVOICE_PAYMENTS,
    RECONCILIATION_SETTLEMENTS,
)


class UnknownRoutingKey(ValueError):
    """The routing key belongs to no exchange of ours."""


def exchange_for(routing_key: str) -> Exchange:
    """The exchange a routing key is published on: its first word (``payment.success`` -> payment)."""
    prefix = routing_key.split(".", 1)[0]
    try:
        return Exchange(f"{prefix}.exchange")
    except ValueError:
        raise UnknownRoutingKey(routing_key) from None

"""Every Prometheus metric of the service, declared in one place (STYLE §11).

``create(registry)`` builds them all into a frozen holder; tests pass a fresh ``CollectorRegistry``.
Labels take values from small closed sets (agent names, queue names, outcomes, route templates),
never ids or error text. Durations are histograms in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Seconds: from a fast Redis hit to a slow gateway call.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Metrics:
    agent_messages: Counter
    agent_duration: Histogram
    agent_in_flight: Gauge
    agent_restarts: Counter
    retries: Counter
    dead_letters: Counter
    scheduled_runs: Counter
    outbox_published: Counter
    outbox_backlog: Gauge
    outbox_oldest_age: Gauge
    http_requests: Histogram
    refund_latency: Histogram
    webhooks_received: Counter
    webhook_ingest_duration: Histogram
    email_delivery_failures: Counter
    payments: Counter
    refunds_requested: Counter
    fraud_verdicts: Counter
    fraud_signals: Counter
    webhook_processing: Histogram
    queue_messages: Gauge
    queue_consumers: Gauge
    reconciliation_mismatches: Counter
    reconciliation_open_items: Gauge
    agent_lag: Histogram
    alertmanager_notifications: Counter


def create(registry: CollectorRegistry) -> Metrics:
    """Create and register every metric on ``registry``."""
    return Metrics(
        agent_messages=Counter(
            "payments_agent_messages_total",
            "Messages finished by an agent, by outcome (ok, retried, dead_lettered, duplicate).",
            ["agent", "outcome"],
            registry=registry,
        ),
        agent_duration=Histogram(
            "payments_agent_processing_seconds",
            "Time an agent spent on one message.",
            ["agent"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        agent_in_flight=Gauge(
            "payments_agent_in_flight_messages",
            "Messages an agent is handling right now.",
            ["agent"],
            registry=registry,
        ),
        agent_restarts=Counter(
            "payments_agent_restarts_total",
            "Times the supervisor restarted an agent after it raised.",
            ["agent"],
            registry=registry,
        ),
        retries=Counter(
            "payments_retries_total",
            "Messages sent to a retry tier, by queue and tier.",
            ["queue", "tier"],
            registry=registry,
        ),
        dead_letters=Counter(
            "payments_dead_letters_total",
            "Messages sent to a dead-letter queue, by queue and reason.",
            ["queue", "reason"],
            registry=registry,
        ),
        scheduled_runs=Counter(
            "payments_scheduled_runs_total",
            "Timer and crontab runs, by task (blueprint.function) and outcome (ok, failed, skipped).",
            ["task", "outcome"],
            registry=registry,
        ),
        outbox_published=Counter(
            "payments_outbox_published_total",
            "Outbox events published to the broker with a confirm.",
            registry=registry,
        ),
        outbox_backlog=Gauge(
            "payments_outbox_backlog_events",
            "Committed outbox events not yet published.",
            registry=registry,
        ),
        outbox_oldest_age=Gauge(
            "payments_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox event (0 when empty).",
            registry=registry,
        ),
        refund_latency=Histogram(
            "payments_refund_latency_seconds",
            "From a refund's request to its final state, by outcome (success, failed).",
            ["outcome"],
            # Refunds take from seconds (instant) to days (standard, bank-side).
            buckets=(1, 10, 60, 300, 1800, 3600, 21600, 86400, 259200, 604800, 1209600),
            registry=registry,
        ),
        http_requests=Histogram(
            "payments_http_request_duration_seconds",
            "HTTP request latency by route template, method and status code.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        webhooks_received=Counter(
            "payments_webhooks_received_total",
            "Webhook deliveries answered by ingest, by provider and outcome (accepted, duplicate,"
            " invalid_signature, malformed, forbidden_source, too_large, unavailable).",
            ["provider", "outcome"],
            registry=registry,
        ),
        webhook_ingest_duration=Histogram(
            "payments_webhook_ingest_seconds",
            "Time webhook ingest took to answer a delivery, by provider and outcome.",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        email_delivery_failures=Counter(
            "payments_email_delivery_failures_total",
            "Sends the mail server did not take, by email kind and reason (transient: it may take the"
            " email later; refused: never).",
            ["kind", "reason"],
            registry=registry,
        ),
        payments=Counter(
            "payments_payments_total",
            "Payments by lifecycle event (created, success, failed) and payment method (unknown until"
            " paid); success and failure rates are ratios of these in PromQL.",
            ["status", "method"],
            registry=registry,
        ),
        refunds_requested=Counter(
            "payments_refunds_requested_total",
            "Refunds requested (their outcomes count in payments_refund_latency_seconds).",
            registry=registry,
        ),
        fraud_verdicts=Counter(
            "payments_fraud_verdicts_total",
            "Payments fraud screening judged, by verdict (allow, review, block).",
            ["verdict"],
            registry=registry,
        ),
        fraud_signals=Counter(
            "payments_fraud_signals_total",
            "Fraud rules that fired on a payment, by rule name (the FRAUD_RULES set).",
            ["rule"],
            registry=registry,
        ),
        webhook_processing=Histogram(
            "payments_webhook_processing_seconds",
            "From a webhook's receipt at ingest to its processing finished, by notification kind"
            " (payment, refund, settlement, dispute, unknown) and outcome (success, failed).",
            ["kind", "outcome"],
            # Through the queue and the gateway check: milliseconds normally, minutes on retries.
            buckets=(*LATENCY_BUCKETS, 60.0, 300.0, 900.0, 3600.0),
            registry=registry,
        ),
        queue_messages=Gauge(
            "payments_queue_messages",
            "Messages ready in a queue (work queues and their .dlq), as the broker last reported.",
            ["queue"],
            registry=registry,
        ),
        queue_consumers=Gauge(
            "payments_queue_consumers",
            "Consumers attached to a queue, as the broker last reported.",
            ["queue"],
            registry=registry,
        ),
        reconciliation_mismatches=Counter(
            "payments_reconciliation_mismatches_total",
            "Mismatches the nightly reconciliation runs reported, by kind (an item still open is"
            " reported, and counted, again by each run that finds it).",
            ["kind"],
            registry=registry,
        ),
        reconciliation_open_items=Gauge(
            "payments_reconciliation_open_items",
            "Reconciliation items still open (unresolved), by kind, as the database last reported.",
            ["kind"],
            registry=registry,
        ),
        agent_lag=Histogram(
            "payments_agent_lag_seconds",
            "From a message's publication to its hand-out to an agent (first deliveries only).",
            ["agent"],
            buckets=(*LATENCY_BUCKETS, 60.0, 300.0, 900.0, 3600.0),
            registry=registry,
        ),
        alertmanager_notifications=Counter(
            "payments_alertmanager_notifications_total",
            "Alerts received from Alertmanager, by status (firing, resolved) and what became of them"
            " (raised, cooled_down, recorded).",
            ["status", "outcome"],
            registry=registry,
        ),
    )

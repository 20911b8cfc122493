"""Messages for the alerts agent, built from the real event code wherever it is public, and a way to
run the agent over them until every one is settled."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from payments.agents.alerts import alerts
from payments.domain.events import OutgoingEvent
from payments.domain.payment.events import PaymentFailed, PaymentSucceeded
from payments.domain.payment.states import PaymentState
from payments.domain.webhook.events import webhook_event
from payments.domain.webhook.log import WebhookLog, WebhookStatus
from payments.pipeline.context import AgentContext
from tests.contracts_payments import new_payment
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, RecordingPublisher


def message(event: OutgoingEvent) -> FakeMessage:
    """The message the outbox relay publishes for ``event``."""
    return FakeMessage(
        body=json.dumps(dict(event.payload)).encode(),
        message_id=event.event_id,
        routing_key=event.routing_key,
        timestamp=event.occurred_at,
        message_type=event.routing_key,
    )


def payment_outcome(*, succeeded: bool, method: str | None, n: int, at: datetime) -> FakeMessage:
    """``payment.success`` or ``payment.failed`` of the ``n``-th payment paid with ``method``."""
    state = PaymentState.SUCCESS if succeeded else PaymentState.FAILED
    payment = replace(new_payment(), payment_method=method, status=state, failure_reason=None)
    event_type = PaymentSucceeded if succeeded else PaymentFailed
    [outgoing, *_others] = event_type(
        event_id=f"evt_{method}_{n}", payment=payment, occurred_at=at
    ).outgoing()
    return message(outgoing)


def webhook_failure(*, n: int, at: datetime, provider: str = "cashfree") -> FakeMessage:
    """``analytics.webhook.failure`` of the ``n``-th webhook that failed."""
    log = WebhookLog(
        id=n,
        event_id=f"cf_evt_{n}",
        provider=provider,
        event_type="PAYMENT_SUCCESS_WEBHOOK",
        api_version="2025-01-01",
        order_id=f"ord_{n}",
        payload=None,
        raw_body="{}",
        headers={},
        signature=None,
        hash="0" * 64,
        retry_count=5,
        status=WebhookStatus.FAILED,
        failure_reason="gateway unavailable",
        received_at=at,
        processed_at=None,
    )
    return message(webhook_event(log, "analytics.webhook.failure", now=at, reason="gateway unavailable"))


def refund_created(*, n: int, at: datetime) -> FakeMessage:
    """``analytics.refund.created``, shaped as ``domain/refund/service.py`` writes it."""
    payload: Mapping[str, Any] = {
        "schemaVersion": 1,
        "refundId": f"rf_{n}",
        "paymentId": f"pay_{n}",
        "orderId": f"ord_{n}",
        "amount": "100.00",
        "currency": "INR",
        "status": "INITIATED",
        "speed": "STANDARD",
        "reason": "customer asked",
        "statusDescription": None,
        "occurredAt": at.isoformat(),
    }
    routing_key = "analytics.refund.created"
    return message(
        OutgoingEvent(
            event_id=f"refund_rf_{n}_v1_{routing_key}",
            routing_key=routing_key,
            payload=payload,
            occurred_at=at,
        )
    )


def again(original: FakeMessage) -> FakeMessage:
    """The same message delivered again (redelivery, or a replay from the event log)."""
    return replace(original, redelivered=True, settled=None)


async def run_alerts_agent(context: AgentContext, *messages: FakeMessage) -> RecordingPublisher:
    """Run the alerts agent until every message is settled; what it re-published is returned."""
    [spec] = alerts.agents
    return await run_until_settled(spec, context, *messages)

"""Payment events (past tense) and the messages they become.

Each event goes out on ``payment.exchange`` under its DESIGN §3 routing key, and the ones analytics
needs also under ``analytics.payment.*``. Every message carries ``schemaVersion`` so consumers can
evolve; an expiry is a cancellation with ``reason: "expired"`` (DESIGN §3 has no expiry key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

from payments.domain.events import OutgoingEvent
from payments.domain.fraud.screen import ALLOWED, Assessment
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PaymentState

#: Bumped when a payload changes incompatibly; consumers read it before anything else.
SCHEMA_VERSION: Final = 1


@dataclass(frozen=True, kw_only=True)
class PaymentEvent:
    """Something that happened to a payment; ``outgoing()`` turns it into outbox messages."""

    routing_keys: ClassVar[tuple[str, ...]]

    event_id: str
    payment: Payment
    occurred_at: datetime

    def details(self) -> Mapping[str, Any]:
        return {}

    def payload(self) -> dict[str, Any]:
        payment = self.payment
        return {
            "schemaVersion": SCHEMA_VERSION,
            "eventId": self.event_id,
            "type": self.routing_keys[0],
            "occurredAt": self.occurred_at.isoformat(),
            "paymentId": payment.payment_id,
            "orderId": payment.order_id,
            "userId": payment.user_id,
            "status": payment.status.value,
            "amount": str(payment.amount.amount),
            "currency": payment.amount.currency,
            "gateway": payment.gateway,
            "gatewayPaymentId": payment.gateway_payment_id,
            "paymentMethod": payment.payment_method,
            # The fraud agent counts failures per IP from it.
            "clientIp": payment.client_ip,
            **self.details(),
        }

    def outgoing(self) -> list[OutgoingEvent]:
        """One outbox message per routing key, each with its own id (consumers dedupe per message)."""
        body = self.payload()
        return [
            OutgoingEvent(
                event_id=f"{self.event_id}.{index}",
                routing_key=key,
                payload={**body, "type": key},
                occurred_at=self.occurred_at,
            )
            for index, key in enumerate(self.routing_keys)
        ]


@dataclass(frozen=True, kw_only=True)
class PaymentCreated(PaymentEvent):
    """Recorded; ``risk`` is what fraud screening said, and the subjects it counted the payment under.

    The fraud agent re-applies the payment to its tables from ``risk.subjects``, so a replay of the
    event log rebuilds them without the customer's email or phone (the subjects hold digests).
    """

    routing_keys = ("payment.created", "analytics.payment.created")
    assessment: Assessment = ALLOWED

    def details(self) -> Mapping[str, Any]:
        assessment = self.assessment
        return {
            "deviceFingerprint": self.payment.device_fingerprint,
            "risk": {
                "verdict": assessment.verdict.value,
                "score": assessment.score,
                "rules": assessment.reasons,
                "subjects": dict(assessment.subjects),
            },
        }


@dataclass(frozen=True, kw_only=True)
class PaymentProcessing(PaymentEvent):
    routing_keys = ("payment.processing",)


@dataclass(frozen=True, kw_only=True)
class PaymentSucceeded(PaymentEvent):
    routing_keys = ("payment.success", "analytics.payment.success")


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(PaymentEvent):
    #: ``email.payment.failed`` asks the email agent to tell the customer why, with a link to retry.
    routing_keys = ("payment.failed", "analytics.payment.failed", "email.payment.failed")

    def details(self) -> Mapping[str, Any]:
        return {"failureReason": self.payment.failure_reason}


@dataclass(frozen=True, kw_only=True)
class PaymentCancelled(PaymentEvent):
    """Closed unpaid: cancelled by us, or expired (``reason`` tells which)."""

    routing_keys = ("payment.cancelled",)

    def details(self) -> Mapping[str, Any]:
        expired = self.payment.status is PaymentState.EXPIRED
        return {"reason": "expired" if expired else "cancelled", "failureReason": self.payment.failure_reason}


@dataclass(frozen=True, kw_only=True)
class PaymentSettled(PaymentEvent):
    routing_keys = ("payment.settled",)


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(PaymentEvent):
    """Part or all of the captured amount went back to the customer."""

    routing_keys = ("payment.refunded",)
    refunded: str = "0"

    def details(self) -> Mapping[str, Any]:
        return {"refundedAmount": self.refunded}

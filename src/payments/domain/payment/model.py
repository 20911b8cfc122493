"""The payment aggregate: one customer payment and the gateway order that collects it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from payments.domain.money import Money
from payments.domain.payment.states import PaymentState, PaymentTrigger, transition


@dataclass(frozen=True, kw_only=True)
class CustomerDetails:
    """Who pays; stored encrypted (email, phone, name are personal data)."""

    name: str | None
    email: str | None
    phone: str


@dataclass(frozen=True, kw_only=True)
class Payment:
    payment_id: str
    #: Our order id at the gateway; derived from the payment so a retried create reuses it.
    order_id: str
    user_id: str
    amount: Money
    status: PaymentState
    customer: CustomerDetails
    gateway: str
    gateway_order_id: str | None = None
    #: The gateway's id of the attempt that decided the payment (Cashfree's cf_payment_id).
    gateway_payment_id: str | None = None
    #: Handed to the customer's checkout to pay (Cashfree's payment_session_id).
    session_id: str | None = None
    payment_method: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    return_url: str | None = None
    failure_reason: str | None = None
    settlement_status: str | None = None
    settlement_amount: Money | None = None
    is_reconciled: bool = False
    retry_count: int = 0
    order_expires_at: datetime | None = None
    purpose: str = "one_time"
    idempotency_key: str | None = None
    request_hash: str | None = None
    #: Where the create came from (the client's IP) and the device it named: fraud screening counts
    #: payments and failures per IP and device, and they stay with the payment as evidence.
    client_ip: str | None = None
    device_fingerprint: str | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime

    def moved(self, trigger: PaymentTrigger, *, now: datetime, **changes: Any) -> Payment:
        """This payment after ``trigger`` (raises ``IllegalTransition``), with ``changes`` applied."""
        return replace(
            self,
            status=transition(self.status, trigger),
            version=self.version + 1,
            updated_at=now,
            **changes,
        )

    def can_still_be_paid(self, now: datetime) -> bool:
        """True while no attempt captured money and the order has not expired."""
        unpaid = self.status in {
            PaymentState.PENDING,
            PaymentState.AUTHORIZING,
            PaymentState.PROCESSING,
            PaymentState.FAILED,
            PaymentState.CREATED,
        }
        return unpaid and (self.order_expires_at is None or now < self.order_expires_at)

    def snapshot(self) -> dict[str, Any]:
        """The audit log's before/after view: state and money, never personal data."""
        return {
            "status": self.status.value,
            "amount": str(self.amount.amount),
            "currency": self.amount.currency,
            "gatewayOrderId": self.gateway_order_id,
            "gatewayPaymentId": self.gateway_payment_id,
            "failureReason": self.failure_reason,
            "settlementStatus": self.settlement_status,
            "version": self.version,
        }

"""The payment gateway port: what the domain needs from Cashfree (or, later, Razorpay, Stripe, PhonePe).

Everything here is in our terms. A bridge (``bridges/cashfree/``) maps its wire format onto these types
and its errors onto the domain error tree: ``GatewayRejected`` (invalid request, with the gateway's
code), ``NotFound``, ``GatewayConflict``, ``GatewayRateLimited`` and ``DependencyUnavailable``
(transient), ``GatewayAuthenticationFailed`` (our credentials).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from payments.domain.money import Money


class GatewayOrderStatus(StrEnum):
    ACTIVE = "ACTIVE"  #: no successful attempt yet; can still be paid
    PAID = "PAID"  #: one attempt succeeded
    EXPIRED = "EXPIRED"  #: unpaid past its expiry; no new attempts
    TERMINATED = "TERMINATED"  #: closed by us
    TERMINATION_REQUESTED = "TERMINATION_REQUESTED"  #: closing; may still end PAID
    UNKNOWN = "UNKNOWN"  #: a status this code does not know (kept, never guessed)


class AttemptStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    PENDING = "PENDING"
    NOT_ATTEMPTED = "NOT_ATTEMPTED"
    USER_DROPPED = "USER_DROPPED"
    VOID = "VOID"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"


class GatewayRefundStatus(StrEnum):
    PENDING = "PENDING"  #: accepted, not yet with the customer
    SUCCESS = "SUCCESS"
    CANCELLED = "CANCELLED"  #: gave up (after the gateway's own retries)
    ONHOLD = "ONHOLD"  #: held by the gateway; the reason is in ``status_description``
    FAILED = "FAILED"  #: listed by Cashfree's docs though not by its enum
    UNKNOWN = "UNKNOWN"


class RefundSpeed(StrEnum):
    STANDARD = "STANDARD"
    INSTANT = "INSTANT"


@dataclass(frozen=True, kw_only=True)
class Customer:
    customer_id: str
    phone: str
    email: str | None = None
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderRequest:
    """Open an order for ``amount``; ``order_id`` is ours and makes the call idempotent."""

    order_id: str
    amount: Money
    customer: Customer
    return_url: str | None = None
    notify_url: str | None = None
    expires_at: datetime | None = None
    note: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class GatewayOrder:
    order_id: str
    gateway_order_id: str
    amount: Money
    status: GatewayOrderStatus
    #: Handed to the customer's browser/app to pay (Cashfree's ``payment_session_id``).
    session_id: str | None
    created_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class GatewayAttempt:
    """One payment attempt on an order; an order may have several (failed, then successful)."""

    attempt_id: str
    order_id: str
    amount: Money
    status: AttemptStatus
    method: str | None
    message: str | None
    bank_reference: str | None
    error_code: str | None
    error_reason: str | None
    started_at: datetime | None
    completed_at: datetime | None
    #: The gateway's own record, for the transactions table and investigations.
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class RefundRequest:
    """Refund part or all of a paid order; ``refund_id`` is ours and makes the call idempotent."""

    order_id: str
    refund_id: str
    amount: Money
    note: str | None = None
    speed: RefundSpeed = RefundSpeed.STANDARD


@dataclass(frozen=True, kw_only=True)
class GatewayRefund:
    refund_id: str
    gateway_refund_id: str | None
    order_id: str
    attempt_id: str | None
    amount: Money
    status: GatewayRefundStatus
    status_description: str | None
    #: The bank's reference for the refund (ARN), once there is one.
    bank_reference: str | None
    created_at: datetime | None
    processed_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class GatewaySettlement:
    """Money the gateway paid out to us for one captured payment: amount less fees and tax."""

    settlement_id: str
    order_id: str
    attempt_id: str | None
    order_amount: Money
    service_charge: Money
    service_tax: Money
    settlement_amount: Money
    #: The bank UTR of the payout.
    utr: str | None
    paid_at: datetime | None
    settled_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class ReconciliationEntry:
    """One line of the gateway's reconciliation report (a payment, refund, settlement, adjustment…)."""

    event_id: str
    event_type: str
    amount: Money
    settlement_amount: Money | None
    status: str | None
    occurred_at: datetime | None
    order_id: str | None
    attempt_id: str | None
    refund_id: str | None
    settlement_id: str | None
    utr: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)


class PaymentGateway(Protocol):
    """Orders, attempts, refunds, settlements and reconciliation at one payment gateway."""

    #: Stable name stored with each payment (``cashfree``).
    name: str

    async def create_order(self, request: OrderRequest) -> GatewayOrder:
        """Open an order; repeating the call with the same order id and amount returns the same order."""
        ...

    async def get_order(self, order_id: str) -> GatewayOrder: ...

    async def terminate_order(self, order_id: str) -> GatewayOrder: ...

    async def list_attempts(self, order_id: str) -> Sequence[GatewayAttempt]: ...

    async def get_attempt(self, order_id: str, attempt_id: str) -> GatewayAttempt: ...

    async def create_refund(self, request: RefundRequest) -> GatewayRefund:
        """Ask for a refund; repeating the call with the same refund id is safe."""
        ...

    async def list_refunds(self, order_id: str) -> Sequence[GatewayRefund]: ...

    async def get_refund(self, order_id: str, refund_id: str) -> GatewayRefund: ...

    async def settlements_for_order(self, order_id: str) -> Sequence[GatewaySettlement]: ...

    async def settlements(self, start: datetime, end: datetime) -> Sequence[GatewaySettlement]:
        """Every settlement in the range, all pages followed."""
        ...

    async def reconciliation(self, start: datetime, end: datetime) -> Sequence[ReconciliationEntry]:
        """The gateway's payment-level reconciliation report for the range, all pages followed."""
        ...

    async def settlement_reconciliation(
        self, start: datetime, end: datetime
    ) -> Sequence[ReconciliationEntry]:
        """The settlement-level reconciliation report for the range, all pages followed."""
        ...

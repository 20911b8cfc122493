"""An in-memory payment gateway with Cashfree's rules, for unit tests of the payment service.

Orders are unique per order id (a repeat with the same amount returns the order; another amount is a
``GatewayConflict``); an order takes attempts until one succeeds, then it is PAID; ``expire``/``terminate``
close it. Tests drive customers with ``attempt(order_id, status)``, pay PAID orders out with ``settle``
(listed by ``settlements`` by payout time), and can make the gateway lie about an amount with
``tamper_amount`` or refuse the next call with ``fail_next``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from payments.domain.errors import GatewayConflict, GatewayRejected, NotFound
from payments.domain.gateway import (
    AttemptStatus,
    GatewayAttempt,
    GatewayOrder,
    GatewayOrderStatus,
    GatewayRefund,
    GatewayRefundStatus,
    GatewaySettlement,
    OrderRequest,
    ReconciliationEntry,
    RefundRequest,
)
from payments.domain.money import Money


class InMemoryGateway:
    name = "cashfree"

    def __init__(
        self, *, now: datetime, order_ttl: timedelta = timedelta(days=30), first_id: int = 1000
    ) -> None:
        self.now = now
        self.order_ttl = order_ttl
        self.orders: dict[str, GatewayOrder] = {}
        self.order_attempts: dict[str, list[GatewayAttempt]] = {}
        self.create_calls = 0
        self.refunds: dict[tuple[str, str], GatewayRefund] = {}
        #: The status a new refund gets (Cashfree: PENDING, then a webhook).
        self.refund_outcome = GatewayRefundStatus.PENDING
        self.fail_next: list[Exception] = []
        self.reject_phone: str | None = None
        #: Payouts, in the order they were made (``settle``).
        self.payouts: list[GatewaySettlement] = []
        #: Gateway ids count up from here; tests sharing a database start each gateway elsewhere.
        self._ids = itertools.count(first_id)

    # --- the PaymentGateway protocol -------------------------------------------------------------

    async def create_order(self, request: OrderRequest) -> GatewayOrder:
        self._maybe_fail()
        self.create_calls += 1
        if request.customer.phone == self.reject_phone:
            raise GatewayRejected(
                "customer_phone is invalid", gateway_code="customer_details.customer_phone_invalid"
            )
        existing = self.orders.get(request.order_id)
        if existing is not None:
            if existing.amount != request.amount:
                raise GatewayConflict(f"order {request.order_id} exists with another amount")
            return existing
        order = GatewayOrder(
            order_id=request.order_id,
            gateway_order_id=str(next(self._ids)),
            amount=request.amount,
            status=GatewayOrderStatus.ACTIVE,
            session_id=f"session_{request.order_id}",
            created_at=self.now,
            expires_at=request.expires_at or self.now + self.order_ttl,
        )
        self.orders[request.order_id] = order
        self.order_attempts[request.order_id] = []
        return order

    async def get_order(self, order_id: str) -> GatewayOrder:
        self._maybe_fail()
        return self._order(order_id)

    async def terminate_order(self, order_id: str) -> GatewayOrder:
        return self._set_status(order_id, GatewayOrderStatus.TERMINATED)

    async def list_attempts(self, order_id: str) -> Sequence[GatewayAttempt]:
        self._maybe_fail()
        self._order(order_id)
        return list(self.order_attempts[order_id])

    async def get_attempt(self, order_id: str, attempt_id: str) -> GatewayAttempt:
        for attempt in self.order_attempts.get(order_id, []):
            if attempt.attempt_id == attempt_id:
                return attempt
        raise NotFound(f"attempt {attempt_id} not found")

    async def create_refund(self, request: RefundRequest) -> GatewayRefund:
        """Cashfree's rules: paid orders only, never more than was paid, one refund per refund id."""
        self._maybe_fail()
        existing = self.refunds.get((request.order_id, request.refund_id))
        if existing is not None:
            return existing
        order = self._order(request.order_id)
        if order.status is not GatewayOrderStatus.PAID:
            raise GatewayRejected("refund on an unpaid order", gateway_code="order_not_paid")
        taken = sum(
            (
                r.amount.amount
                for r in await self.list_refunds(request.order_id)
                if r.status is not GatewayRefundStatus.CANCELLED
            ),
            start=order.amount.amount * 0,
        )
        if taken + request.amount.amount > order.amount.amount:
            raise GatewayRejected("refund exceeds the paid amount", gateway_code="refund_amount_invalid")
        refund = GatewayRefund(
            refund_id=request.refund_id,
            gateway_refund_id=str(next(self._ids)),
            order_id=request.order_id,
            attempt_id=None,
            amount=request.amount,
            status=self.refund_outcome,
            status_description=None,
            bank_reference=None,
            created_at=self.now,
            processed_at=None,
        )
        self.refunds[(request.order_id, request.refund_id)] = refund
        return refund

    async def list_refunds(self, order_id: str) -> Sequence[GatewayRefund]:
        return [refund for (order, _), refund in self.refunds.items() if order == order_id]

    async def get_refund(self, order_id: str, refund_id: str) -> GatewayRefund:
        self._maybe_fail()
        refund = self.refunds.get((order_id, refund_id))
        if refund is None:
            raise NotFound(refund_id)
        return refund

    def finish_refund(self, order_id: str, refund_id: str, status: GatewayRefundStatus) -> GatewayRefund:
        """The gateway settles a refund (what its webhook then reports)."""
        refund = replace(self.refunds[(order_id, refund_id)], status=status, processed_at=self.now)
        self.refunds[(order_id, refund_id)] = refund
        return refund

    async def settlements_for_order(self, order_id: str) -> Sequence[GatewaySettlement]:
        self._maybe_fail()
        return [payout for payout in self.payouts if payout.order_id == order_id]

    async def settlements(self, start: datetime, end: datetime) -> Sequence[GatewaySettlement]:
        """Like Cashfree's Get All Settlements: filtered by payout time, both ends included."""
        self._maybe_fail()
        return [p for p in self.payouts if p.settled_at is not None and start <= p.settled_at <= end]

    async def reconciliation(self, start: datetime, end: datetime) -> Sequence[ReconciliationEntry]:
        return []

    async def settlement_reconciliation(
        self, start: datetime, end: datetime
    ) -> Sequence[ReconciliationEntry]:
        return []

    # --- test controls ---------------------------------------------------------------------------

    def attempt(
        self,
        order_id: str,
        status: AttemptStatus,
        *,
        method: str = "upi",
        started_before_expiry: bool = False,
    ) -> GatewayAttempt:
        """A customer's attempt on the order; a success marks the order PAID.

        ``started_before_expiry`` lets an attempt complete on an expired order, as Cashfree allows for
        an attempt begun before the order expired (FACTS §2).
        """
        order = self._order(order_id)
        late_but_allowed = started_before_expiry and order.status is GatewayOrderStatus.EXPIRED
        if order.status is not GatewayOrderStatus.ACTIVE and not late_but_allowed:
            raise GatewayRejected(f"order {order_id} is {order.status.value}")
        self.now += timedelta(seconds=1)
        attempt = GatewayAttempt(
            attempt_id=str(next(self._ids)),
            order_id=order_id,
            amount=order.amount,
            status=status,
            method=method,
            message="Transaction Successful" if status is AttemptStatus.SUCCESS else "Declined by bank",
            bank_reference="ref" + order_id[-6:],
            error_code=None if status is AttemptStatus.SUCCESS else "TRANSACTION_DECLINED",
            error_reason=None if status is AttemptStatus.SUCCESS else "auth_declined",
            started_at=self.now,
            completed_at=self.now,
        )
        self.order_attempts[order_id].append(attempt)
        if status is AttemptStatus.SUCCESS:
            self._set_status(order_id, GatewayOrderStatus.PAID)
        return attempt

    def settle(
        self,
        order_id: str,
        *,
        settlement_id: str = "stl_1",
        utr: str = "UTR0001",
        service_charge: str = "2.00",
        service_tax: str = "0.36",
        at: datetime | None = None,
    ) -> GatewaySettlement:
        """Pay a PAID order out (as Cashfree's settlement batch does), net of charges and tax."""
        order = self._order(order_id)
        if order.status is not GatewayOrderStatus.PAID:
            raise GatewayRejected(f"order {order_id} is {order.status.value}, not PAID")
        paid = next(a for a in self.order_attempts[order_id] if a.status is AttemptStatus.SUCCESS)
        currency = order.amount.currency
        charge, tax = Money.of(service_charge, currency), Money.of(service_tax, currency)
        payout = GatewaySettlement(
            settlement_id=settlement_id,
            order_id=order_id,
            attempt_id=paid.attempt_id,
            order_amount=order.amount,
            service_charge=charge,
            service_tax=tax,
            settlement_amount=Money(order.amount.amount - charge.amount - tax.amount, currency),
            utr=utr,
            paid_at=paid.completed_at,
            settled_at=at or self.now,
        )
        self.payouts.append(payout)
        return payout

    def expire(self, order_id: str) -> None:
        self._set_status(order_id, GatewayOrderStatus.EXPIRED)

    def tamper_amount(self, order_id: str, amount: Money) -> None:
        self.orders[order_id] = replace(self._order(order_id), amount=amount)

    def _set_status(self, order_id: str, status: GatewayOrderStatus) -> GatewayOrder:
        order = replace(self._order(order_id), status=status)
        self.orders[order_id] = order
        return order

    def _order(self, order_id: str) -> GatewayOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id} not found")
        return order

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)


class InMemoryPaymentLocks:
    """One asyncio lock per payment: the single-process stand-in for the Redis lock."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self.acquisitions = 0

    @asynccontextmanager
    async def hold(self, payment_id: str) -> AsyncIterator[None]:
        async with self._locks.setdefault(payment_id, asyncio.Lock()):
            self.acquisitions += 1
            yield


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

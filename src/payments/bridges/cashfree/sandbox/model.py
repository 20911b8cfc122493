"""What the sandbox remembers: orders, payment attempts, refunds, settlements and simulations.

Plain mutable records held in one ``Ledger`` per app. Every change happens on the event loop without
an ``await`` in the middle, so no locks are needed.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from payments.bridges.cashfree.sandbox.errors import not_found
from payments.bridges.cashfree.sandbox.states import OrderStatus, PaymentStatus, RefundStatus


#: Cashfree's ``cf_*`` ids are digit strings, unique per account for ever. Each sandbox starts its ids
#: at the microsecond it was created, so a restarted sandbox never reissues an id that a database kept
#: from an earlier run (the demo keeps its database; the sandbox keeps nothing).
def _id_base() -> int:
    return time.time_ns() // 1000


@dataclass
class Order:
    order_id: str
    cf_order_id: str
    amount: Decimal
    currency: str
    payment_session_id: str
    created_at: datetime
    expiry_time: datetime
    customer: dict[str, Any]
    meta: dict[str, Any]
    tags: dict[str, str] | None
    note: str | None
    splits: list[Any]
    status: OrderStatus = OrderStatus.ACTIVE
    attempt_ids: list[str] = field(default_factory=list)
    refund_ids: list[str] = field(default_factory=list)


@dataclass
class Attempt:
    """One payment attempt (Cashfree's "payment") on an order."""

    cf_payment_id: str
    order_id: str
    amount: Decimal
    currency: str
    method: str  #: the key of ``payment_method``: upi, card or netbanking
    method_details: dict[str, Any]  #: what ``payment_method.<method>`` shows (card number masked)
    group: str  #: Cashfree's ``payment_group``
    started_at: datetime
    status: PaymentStatus = PaymentStatus.PENDING
    #: The outcome a test instrument decided, applied at ``due_at`` (None: wait for /simulate).
    planned: PaymentStatus | None = None
    due_at: datetime | None = None
    completed_at: datetime | None = None
    message: str = "Transaction pending"
    bank_reference: str | None = None
    error: dict[str, str] | None = None


@dataclass
class Refund:
    refund_id: str
    cf_refund_id: str
    order_id: str
    cf_payment_id: str
    amount: Decimal
    currency: str
    note: str | None
    speed: str
    created_at: datetime
    status: RefundStatus = RefundStatus.PENDING
    #: When a refund without a sandbox note succeeds (None: it stays as it is).
    due_at: datetime | None = None
    processed_at: datetime | None = None
    arn: str | None = None
    status_description: str = "In Progress"


@dataclass(frozen=True)
class SettlementBatch:
    """One payout to the merchant, covering every order settled together."""

    cf_settlement_id: str
    settlement_id: int
    transfer_id: int
    utr: str
    transfer_time: datetime
    order_ids: tuple[str, ...]


@dataclass(frozen=True)
class OrderSettlement:
    """One order's share of a batch (Cashfree's SettlementEntity)."""

    order_id: str
    cf_payment_id: str
    batch: SettlementBatch
    order_amount: Decimal
    currency: str
    payment_time: datetime
    service_charge: Decimal
    service_tax: Decimal

    @property
    def settlement_amount(self) -> Decimal:
        return self.order_amount - self.service_charge - self.service_tax


@dataclass(frozen=True)
class Simulation:
    simulation_id: str
    entity: str
    entity_id: str
    payment_status: str
    payment_error_code: str | None


class TimerKind(StrEnum):
    EXPIRE_ORDER = "expire_order"  #: key: (order_id,)
    FINISH_ATTEMPT = "finish_attempt"  #: key: (cf_payment_id,)
    FINISH_REFUND = "finish_refund"  #: key: (order_id, refund_id)


@dataclass(frozen=True, order=True)
class Timer:
    """Work due at a sandbox time; the handler re-checks the record, so a stale timer does nothing."""

    due_at: datetime
    seq: int
    kind: TimerKind = field(compare=False)
    key: tuple[str, ...] = field(compare=False)


@dataclass
class Ledger:
    """Every record of one sandbox, keyed the way the API looks them up."""

    orders: dict[str, Order] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  #: payment_session_id -> order_id
    attempts: dict[str, Attempt] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Refund] = field(default_factory=dict)  #: (order_id, refund_id)
    settlements: dict[str, OrderSettlement] = field(default_factory=dict)  #: by order_id
    batches: list[SettlementBatch] = field(default_factory=list)
    simulations: dict[str, Simulation] = field(default_factory=dict)
    timers: list[Timer] = field(default_factory=list)  #: a heap, soonest first
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _cf_id_base: int = field(default_factory=_id_base)

    def schedule(self, due_at: datetime, kind: TimerKind, *key: str) -> None:
        heapq.heappush(self.timers, Timer(due_at, self.next_number(), kind, key))

    def pop_due(self, now: datetime) -> list[Timer]:
        """Every timer due at ``now``, soonest first."""
        due = []
        while self.timers and self.timers[0].due_at <= now:
            due.append(heapq.heappop(self.timers))
        return due

    def next_number(self) -> int:
        return next(self._numbers)

    def next_cf_id(self) -> str:
        """A fresh digit-string id, unique across every kind of record."""
        return str(self._cf_id_base + self.next_number())

    def order(self, order_id: str) -> Order:
        try:
            return self.orders[order_id]
        except KeyError:
            raise not_found("order_not_found", f"order {order_id!r} does not exist") from None

    def attempt(self, cf_payment_id: str) -> Attempt:
        try:
            return self.attempts[cf_payment_id]
        except KeyError:
            raise not_found("payment_not_found", f"payment {cf_payment_id!r} does not exist") from None

    def refunds_of(self, order: Order) -> list[Refund]:
        return [self.refunds[(order.order_id, refund_id)] for refund_id in order.refund_ids]


def new_session_id() -> str:
    """An opaque ``session_…`` token, as Cashfree hands to the checkout."""
    return "session_" + secrets.token_urlsafe(48)


def new_reference(prefix: str = "") -> str:
    """A bank-style reference number (UTR, ARN, bank_reference)."""
    return prefix + str(secrets.randbelow(10**12)).zfill(12)

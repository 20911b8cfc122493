"""States of the sandbox's orders, payment attempts, refunds and webhook deliveries.

Each machine is an enum, a trigger enum and one ``(state, trigger) -> next state`` table; ``transition``
refuses anything the table does not list, so a handler bug shows up as ``IllegalTransition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, TypeVar

from payments.domain.errors import IllegalTransition


class OrderStatus(StrEnum):
    ACTIVE = "ACTIVE"  #: no successful payment yet; attempts allowed until expiry
    PAID = "PAID"  #: one attempt succeeded; no more attempts
    EXPIRED = "EXPIRED"  #: unpaid past ``order_expiry_time``
    TERMINATED = "TERMINATED"  #: terminated by the merchant
    #: terminate asked while an attempt was in flight; ends TERMINATED, or PAID if that attempt succeeds
    TERMINATION_REQUESTED = "TERMINATION_REQUESTED"


class OrderTrigger(StrEnum):
    PAY = "pay"  #: an attempt succeeded
    EXPIRE = "expire"  #: the sandbox clock passed the expiry time
    TERMINATE = "terminate"  #: terminated with nothing in flight (or the last in-flight attempt failed)
    REQUEST_TERMINATION = "request_termination"  #: terminate asked while an attempt is pending


ORDER_TRANSITIONS: Final[Mapping[tuple[OrderStatus, OrderTrigger], OrderStatus]] = {
    (OrderStatus.ACTIVE, OrderTrigger.PAY): OrderStatus.PAID,
    (OrderStatus.ACTIVE, OrderTrigger.EXPIRE): OrderStatus.EXPIRED,
    (OrderStatus.ACTIVE, OrderTrigger.TERMINATE): OrderStatus.TERMINATED,
    (OrderStatus.ACTIVE, OrderTrigger.REQUEST_TERMINATION): OrderStatus.TERMINATION_REQUESTED,
    # An attempt started before expiry may still succeed after it (FACTS §2).
    (OrderStatus.EXPIRED, OrderTrigger.PAY): OrderStatus.PAID,
    (OrderStatus.TERMINATION_REQUESTED, OrderTrigger.PAY): OrderStatus.PAID,
    (OrderStatus.TERMINATION_REQUESTED, OrderTrigger.TERMINATE): OrderStatus.TERMINATED,
}


class PaymentStatus(StrEnum):
    PENDING = "PENDING"  #: started; waiting for the instrument, the attempt delay or /simulate
    SUCCESS = "SUCCESS"  #: money captured; the order is PAID
    FAILED = "FAILED"  #: declined; ``error_details`` says why
    USER_DROPPED = "USER_DROPPED"  #: the customer abandoned the attempt


class PaymentTrigger(StrEnum):
    SUCCEED = "succeed"
    FAIL = "fail"
    DROP = "drop"


PAYMENT_TRANSITIONS: Final[Mapping[tuple[PaymentStatus, PaymentTrigger], PaymentStatus]] = {
    (PaymentStatus.PENDING, PaymentTrigger.SUCCEED): PaymentStatus.SUCCESS,
    (PaymentStatus.PENDING, PaymentTrigger.FAIL): PaymentStatus.FAILED,
    (PaymentStatus.PENDING, PaymentTrigger.DROP): PaymentStatus.USER_DROPPED,
}


class RefundStatus(StrEnum):
    PENDING = "PENDING"  #: accepted; the outcome comes later (REFUND_STATUS_WEBHOOK)
    SUCCESS = "SUCCESS"  #: processed; ``refund_arn`` is set
    #: failed; Cashfree's enum has no FAILED, so a failed refund ends here (its amount is free again)
    CANCELLED = "CANCELLED"


class RefundTrigger(StrEnum):
    SUCCEED = "succeed"
    CANCEL = "cancel"


REFUND_TRANSITIONS: Final[Mapping[tuple[RefundStatus, RefundTrigger], RefundStatus]] = {
    (RefundStatus.PENDING, RefundTrigger.SUCCEED): RefundStatus.SUCCESS,
    (RefundStatus.PENDING, RefundTrigger.CANCEL): RefundStatus.CANCELLED,
}


class DeliveryState(StrEnum):
    PENDING = "pending"  #: due now or at its next retry time
    DELIVERED = "delivered"  #: the receiver answered 2xx
    FAILED = "failed"  #: every retry failed; given up
    WITHHELD = "withheld"  #: held back by the ``withhold_webhooks`` fault until released


class DeliveryTrigger(StrEnum):
    RELEASE = "release"
    SUCCEED = "succeed"
    RETRY = "retry"
    GIVE_UP = "give_up"


DELIVERY_TRANSITIONS: Final[Mapping[tuple[DeliveryState, DeliveryTrigger], DeliveryState]] = {
    (DeliveryState.WITHHELD, DeliveryTrigger.RELEASE): DeliveryState.PENDING,
    (DeliveryState.PENDING, DeliveryTrigger.SUCCEED): DeliveryState.DELIVERED,
    (DeliveryState.PENDING, DeliveryTrigger.RETRY): DeliveryState.PENDING,
    (DeliveryState.PENDING, DeliveryTrigger.GIVE_UP): DeliveryState.FAILED,
}

S = TypeVar("S", bound=StrEnum)
T = TypeVar("T", bound=StrEnum)


def transition(table: Mapping[tuple[S, T], S], state: S, trigger: T) -> S:
    """The state after ``trigger``; raises ``IllegalTransition`` when the table has no such edge."""
    try:
        return table[(state, trigger)]
    except KeyError:
        raise IllegalTransition(f"{trigger.value} is not allowed from {state.value}") from None

"""Payment attempts: Order Pay, their outcome (at once, after the attempt delay, or by /simulate).

An order takes attempts until one succeeds; PAID, EXPIRED and terminated orders refuse new ones. An
attempt that would succeed on an order another attempt already paid fails instead with
``ORDER_ALREADY_PAID`` (real Cashfree would capture and auto-refund it; the sandbox keeps it simple).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from payments.bridges.cashfree.sandbox import validation as check
from payments.bridges.cashfree.sandbox.errors import invalid
from payments.bridges.cashfree.sandbox.events import PaymentFinished, SandboxEvent
from payments.bridges.cashfree.sandbox.instruments import Instrument, parse_instrument
from payments.bridges.cashfree.sandbox.model import (
    Attempt,
    Ledger,
    Order,
    Simulation,
    TimerKind,
    new_reference,
)
from payments.bridges.cashfree.sandbox.orders import expire_if_due, has_pending
from payments.bridges.cashfree.sandbox.states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    OrderStatus,
    OrderTrigger,
    PaymentStatus,
    PaymentTrigger,
    transition,
)

OUTCOME_TRIGGERS: Final = {
    PaymentStatus.SUCCESS: PaymentTrigger.SUCCEED,
    PaymentStatus.FAILED: PaymentTrigger.FAIL,
    PaymentStatus.USER_DROPPED: PaymentTrigger.DROP,
}
#: ``error_details`` of a declined attempt: code / reason / source as in FACTS §4.
DECLINED: Final = {
    "error_code": "TRANSACTION_DECLINED",
    "error_description": "issuer bank or payment service provider declined the transaction",
    "error_reason": "auth_declined",
    "error_source": "customer",
    "error_code_raw": "ZM",
    "error_description_raw": "Invalid UPI PIN entered",
}
DROPPED: Final = {
    "error_code": "USER_DROPPED",
    "error_description": "user dropped and did not complete the payment",
    "error_reason": "user_dropped",
    "error_source": "customer",
}
ALREADY_PAID: Final = {
    "error_code": "ORDER_ALREADY_PAID",
    "error_description": "another attempt already paid this order",
    "error_reason": "order_already_paid",
    "error_source": "cashfree",
}
MESSAGES: Final = {
    PaymentStatus.SUCCESS: "00::Transaction success",
    PaymentStatus.FAILED: "Transaction declined",
    PaymentStatus.USER_DROPPED: "User dropped the transaction",
}
#: Why each order state refuses Order Pay.
REFUSALS: Final = {
    OrderStatus.PAID: ("order_already_paid", "order is already paid"),
    OrderStatus.EXPIRED: ("order_expired", "order has expired"),
    OrderStatus.TERMINATED: ("order_terminated", "order is terminated"),
    OrderStatus.TERMINATION_REQUESTED: ("order_terminated", "order termination is in progress"),
}


def pay(
    ledger: Ledger, body: dict[str, Any], now: datetime, delay_seconds: float
) -> tuple[Attempt, list[SandboxEvent]]:
    """Order Pay: start an attempt; a test instrument decides it now or after ``delay_seconds``."""
    session_id = check.text(body, "payment_session_id", lengths=(1, 1000), required=True)
    order_id = ledger.sessions.get(str(session_id))
    if order_id is None:
        raise invalid("payment_session_id_invalid", "payment_session_id is not valid")
    order = ledger.orders[order_id]
    instrument = parse_instrument(body)
    _ensure_payable(order, now)
    attempt = _start(ledger, order, instrument, now)
    if instrument.outcome is None:
        return attempt, []
    if delay_seconds <= 0:
        return attempt, finish(ledger, attempt, instrument.outcome, now)
    attempt.planned = instrument.outcome
    attempt.due_at = now + timedelta(seconds=delay_seconds)
    ledger.schedule(attempt.due_at, TimerKind.FINISH_ATTEMPT, attempt.cf_payment_id)
    return attempt, []


def _start(ledger: Ledger, order: Order, instrument: Instrument, now: datetime) -> Attempt:
    attempt = Attempt(
        cf_payment_id=ledger.next_cf_id(),
        order_id=order.order_id,
        amount=order.amount,
        currency=order.currency,
        method=instrument.method,
        method_details=instrument.details,
        group=instrument.group,
        started_at=now,
    )
    ledger.attempts[attempt.cf_payment_id] = attempt
    order.attempt_ids.append(attempt.cf_payment_id)
    return attempt


def _ensure_payable(order: Order, now: datetime) -> None:
    expire_if_due(order, now)
    refusal = REFUSALS.get(order.status)
    if refusal is not None:
        raise invalid(*refusal)


def finish(
    ledger: Ledger, attempt: Attempt, outcome: PaymentStatus, now: datetime, error_code: str | None = None
) -> list[SandboxEvent]:
    """Move a PENDING attempt to ``outcome`` and its order along with it; one webhook event."""
    order = ledger.orders[attempt.order_id]
    error = {**DECLINED, "error_code": error_code} if error_code else DECLINED
    if outcome is PaymentStatus.SUCCESS and order.status is OrderStatus.PAID:
        outcome, error = PaymentStatus.FAILED, ALREADY_PAID
    attempt.status = transition(PAYMENT_TRANSITIONS, attempt.status, OUTCOME_TRIGGERS[outcome])
    attempt.completed_at, attempt.planned, attempt.due_at = now, None, None
    attempt.message = MESSAGES[outcome]
    if outcome is PaymentStatus.SUCCESS:
        attempt.bank_reference = new_reference()
        order.status = transition(ORDER_TRANSITIONS, order.status, OrderTrigger.PAY)
    else:
        attempt.error = dict(DROPPED if outcome is PaymentStatus.USER_DROPPED else error)
        if order.status is OrderStatus.TERMINATION_REQUESTED and not has_pending(ledger, order):
            order.status = transition(ORDER_TRANSITIONS, order.status, OrderTrigger.TERMINATE)
    return [PaymentFinished(order, attempt, now)]


def finish_planned(ledger: Ledger, cf_payment_id: str, now: datetime) -> list[SandboxEvent]:
    """Apply a test instrument's outcome once the attempt delay has passed (unless /simulate came first)."""
    attempt = ledger.attempts[cf_payment_id]
    if attempt.planned is None or attempt.due_at is None or attempt.due_at > now:
        return []
    return finish(ledger, attempt, attempt.planned, now)


def simulate(ledger: Ledger, body: dict[str, Any], now: datetime) -> tuple[Simulation, list[SandboxEvent]]:
    """``POST /simulate`` for ``entity: PAYMENTS``: decide a PENDING attempt's outcome."""
    entity = check.choice(body, "entity", frozenset({"PAYMENTS", "SUBS_PAYMENTS"}))
    if entity != "PAYMENTS":
        raise invalid("entity_invalid", "the sandbox simulates PAYMENTS only")
    entity_id = str(check.text(body, "entity_id", lengths=(1, 50), required=True))
    wanted = check.sub_object(body, "entity_simulation", required=True)
    assert wanted is not None  # required=True raises instead of returning None
    status = PaymentStatus(check.choice(wanted, "entity_simulation.payment_status", _SIMULATED))
    error_code = check.text(wanted, "entity_simulation.payment_error_code", lengths=(1, 100))
    events = _apply(ledger, ledger.attempt(entity_id), status, error_code, now)
    simulation = Simulation(ledger.next_cf_id(), entity, entity_id, status.value, error_code)
    ledger.simulations[simulation.simulation_id] = simulation
    return simulation, events


_SIMULATED: Final = frozenset(status.value for status in PaymentStatus)


def _apply(
    ledger: Ledger, attempt: Attempt, status: PaymentStatus, error_code: str | None, now: datetime
) -> list[SandboxEvent]:
    if attempt.status is not PaymentStatus.PENDING:
        raise invalid("payment_not_pending", f"payment is already {attempt.status.value}")
    if status is PaymentStatus.PENDING:
        attempt.planned, attempt.due_at = None, None
        return []
    if status is PaymentStatus.SUCCESS and ledger.orders[attempt.order_id].status is OrderStatus.PAID:
        raise invalid("order_already_paid", "another attempt already paid this order")
    return finish(ledger, attempt, status, now, error_code)

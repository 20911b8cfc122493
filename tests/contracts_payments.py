"""The payment repository contract, run against the in-memory fake and against PostgreSQL.

Each contract takes a factory of units of work and uses fresh ids, so it never depends on what else
the store holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.errors import ConcurrentTransition, NotFound
from payments.domain.gateway import AttemptStatus, GatewayAttempt
from payments.domain.money import Money
from payments.domain.payment.model import CustomerDetails, Payment
from payments.domain.payment.repository import HistoryQuery
from payments.domain.payment.states import PaymentState, PaymentTrigger
from payments.domain.unit_of_work import UnitOfWork

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def new_payment(*, user_id: str | None = None, created_at: datetime = NOW, **changes) -> Payment:
    suffix = uuid.uuid4().hex[:12]
    payment = Payment(
        payment_id=f"pay_{suffix}",
        order_id=f"ord_{suffix}",
        user_id=user_id or f"user_{suffix}",
        amount=Money.of("499.00", "INR"),
        status=PaymentState.CREATED,
        customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone="9876543210"),
        gateway="cashfree",
        metadata={"plan": "pro", "seats": 3},
        description="CommDesk Pro",
        created_at=created_at,
        updated_at=created_at,
    )
    return replace(payment, **changes)


def attempt(payment: Payment, status: AttemptStatus, attempt_id: str | None = None) -> GatewayAttempt:
    return GatewayAttempt(
        attempt_id=attempt_id or uuid.uuid4().hex[:10],
        order_id=payment.order_id,
        amount=payment.amount,
        status=status,
        method="upi",
        message="ok" if status is AttemptStatus.SUCCESS else "declined",
        bank_reference="bankref1",
        error_code=None if status is AttemptStatus.SUCCESS else "TRANSACTION_DECLINED",
        error_reason=None if status is AttemptStatus.SUCCESS else "auth_declined",
        started_at=NOW,
        completed_at=NOW,
        raw={"cf_payment_id": "1", "payment_amount": "499.00"},
    )


async def stored(uow_factory: UnitOfWorkFactory, payment_id: str) -> Payment:
    async with uow_factory() as uow:
        return await uow.payments.get(payment_id)


async def a_payment_round_trips_with_its_customer_and_money(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    async with uow_factory() as uow:
        assert await uow.payments.add(payment) is True

    assert await stored(uow_factory, payment.payment_id) == payment
    async with uow_factory() as uow:
        assert await uow.payments.get_by_order_id(payment.order_id) == payment


async def adding_the_same_payment_twice_writes_it_once(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    async with uow_factory() as uow:
        assert await uow.payments.add(payment) is True
    async with uow_factory() as uow:
        assert await uow.payments.add(replace(payment, description="changed")) is False

    assert (await stored(uow_factory, payment.payment_id)).description == "CommDesk Pro"


async def a_missing_payment_is_not_found(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.payments.get("pay_missing")
        with pytest.raises(NotFound):
            await uow.payments.get_by_order_id("ord_missing")


async def a_transition_is_saved_with_its_new_fields(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    async with uow_factory() as uow:
        await uow.payments.add(payment)
    opened = payment.moved(
        PaymentTrigger.OPEN,
        now=NOW,
        gateway_order_id="cf_1",
        session_id="session_1",
        order_expires_at=NOW + timedelta(days=1),
    )
    async with uow_factory() as uow:
        await uow.payments.save(payment, opened, PaymentTrigger.OPEN)

    assert await stored(uow_factory, payment.payment_id) == opened


async def a_stale_or_concurrent_transition_is_refused(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    async with uow_factory() as uow:
        await uow.payments.add(payment)
    opened = payment.moved(PaymentTrigger.OPEN, now=NOW)
    async with uow_factory() as uow:
        await uow.payments.save(payment, opened, PaymentTrigger.OPEN)

    # A second writer that read the CREATED row loses: version and state have moved on.
    async with uow_factory() as uow:
        with pytest.raises(ConcurrentTransition):
            await uow.payments.save(
                payment, payment.moved(PaymentTrigger.CANCEL, now=NOW), PaymentTrigger.CANCEL
            )
    assert (await stored(uow_factory, payment.payment_id)).status is PaymentState.PENDING


async def a_rolled_back_write_leaves_nothing(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()

    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.payments.add(payment)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await add_then_fail()

    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.payments.get(payment.payment_id)


async def an_attempt_is_recorded_once_and_again_only_when_its_status_moves(
    uow_factory: UnitOfWorkFactory,
) -> None:
    payment = new_payment()
    pending = attempt(payment, AttemptStatus.PENDING)
    async with uow_factory() as uow:
        await uow.payments.add(payment)
        assert await uow.payments.record_attempt(payment.payment_id, pending, now=NOW) is True
    async with uow_factory() as uow:
        assert await uow.payments.record_attempt(payment.payment_id, pending, now=NOW) is False
        succeeded = replace(pending, status=AttemptStatus.SUCCESS)
        assert await uow.payments.record_attempt(payment.payment_id, succeeded, now=NOW) is True

    async with uow_factory() as uow:
        [only] = await uow.payments.attempts(payment.payment_id)
    assert (only.attempt_id, only.status, only.amount) == (
        pending.attempt_id,
        AttemptStatus.SUCCESS,
        payment.amount,
    )
    assert only.order_id == payment.order_id


async def history_is_the_users_own_newest_first_page_by_page(uow_factory: UnitOfWorkFactory) -> None:
    user = f"user_{uuid.uuid4().hex[:8]}"
    mine = [new_payment(user_id=user, created_at=NOW + timedelta(minutes=i)) for i in range(5)]
    async with uow_factory() as uow:
        for payment in [*mine, new_payment()]:
            await uow.payments.add(payment)

    async with uow_factory() as uow:
        first = await uow.payments.history(HistoryQuery(user_id=user, limit=3))
        last = first[-1]
        second = await uow.payments.history(
            HistoryQuery(user_id=user, limit=3, after=(last.created_at, last.payment_id))
        )
    assert [p.payment_id for p in [*first, *second]] == [p.payment_id for p in reversed(mine)]


async def history_filters_by_status_and_date(uow_factory: UnitOfWorkFactory) -> None:
    user = f"user_{uuid.uuid4().hex[:8]}"
    early = new_payment(user_id=user, created_at=NOW)
    late = new_payment(user_id=user, created_at=NOW + timedelta(days=2))
    async with uow_factory() as uow:
        await uow.payments.add(early)
        await uow.payments.add(late)
        await uow.payments.save(late, late.moved(PaymentTrigger.OPEN, now=NOW), PaymentTrigger.OPEN)

    async with uow_factory() as uow:
        pending = await uow.payments.history(HistoryQuery(user_id=user, status=PaymentState.PENDING))
        first_day = await uow.payments.history(
            HistoryQuery(user_id=user, created_from=NOW, created_to=NOW + timedelta(days=1))
        )
    assert [p.payment_id for p in pending] == [late.payment_id]
    assert [p.payment_id for p in first_day] == [early.payment_id]


async def only_unpaid_payments_past_their_expiry_are_due(uow_factory: UnitOfWorkFactory) -> None:
    expired_at = NOW - timedelta(days=3650)  # older than anything another contract leaves behind
    due = new_payment(status=PaymentState.PENDING, order_expires_at=expired_at)
    paid = new_payment(status=PaymentState.SUCCESS, order_expires_at=expired_at)
    later = new_payment(status=PaymentState.PENDING, order_expires_at=NOW + timedelta(days=1))
    async with uow_factory() as uow:
        for payment in (due, paid, later):
            await uow.payments.add(payment)

    async with uow_factory() as uow:
        found = await uow.payments.due_for_expiry(now=NOW, limit=1000)
    ids = {p.payment_id for p in found}
    assert due.payment_id in ids
    assert paid.payment_id not in ids
    assert later.payment_id not in ids


async def a_row_read_for_update_is_held_until_the_transaction_ends(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    async with uow_factory() as uow:
        await uow.payments.add(payment)
    events: list[str] = []
    first_has_lock, second_is_trying = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with uow_factory() as uow:
            await uow.payments.get(payment.payment_id, for_update=True)
            first_has_lock.set()
            await second_is_trying.wait()
            # A window in which a broken lock would let the second transaction through; the
            # assertion below, not this pause, is what the test checks.
            await asyncio.sleep(0.2)
            events.append("first commits")

    async def second() -> None:
        await first_has_lock.wait()
        async with uow_factory() as uow:
            second_is_trying.set()
            await uow.payments.get(payment.payment_id, for_update=True)
            events.append("second has the row")

    await asyncio.gather(first(), second())
    assert events == ["first commits", "second has the row"]


PAYMENT_CONTRACTS = [
    a_payment_round_trips_with_its_customer_and_money,
    adding_the_same_payment_twice_writes_it_once,
    a_missing_payment_is_not_found,
    a_transition_is_saved_with_its_new_fields,
    a_stale_or_concurrent_transition_is_refused,
    a_rolled_back_write_leaves_nothing,
    an_attempt_is_recorded_once_and_again_only_when_its_status_moves,
    history_is_the_users_own_newest_first_page_by_page,
    history_filters_by_status_and_date,
    only_unpaid_payments_past_their_expiry_are_due,
    a_row_read_for_update_is_held_until_the_transaction_ends,
]

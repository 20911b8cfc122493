"""The refund repository contract, run against the in-memory fake and against PostgreSQL.

Each contract takes a factory of units of work, stores its own payment first (refunds reference
payments) and uses fresh ids, so it never depends on what else the store holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from payments.domain.errors import ConcurrentTransition, Conflict, NotFound
from payments.domain.gateway import RefundSpeed
from payments.domain.money import Money
from payments.domain.payment.model import Payment
from payments.domain.refund.model import Refund
from payments.domain.refund.states import RefundState, RefundTrigger
from payments.domain.unit_of_work import UnitOfWork
from tests.contracts_payments import NOW, new_payment

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
#: Older than anything another contract leaves behind, so the poll's oldest-first page starts with ours.
LONG_AGO = NOW - timedelta(days=3650)


def new_refund(payment: Payment, *, created_at: datetime = NOW, **changes) -> Refund:
    suffix = uuid.uuid4().hex[:12]
    refund = Refund(
        refund_id=f"rf_{suffix}",
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        amount=Money.of("100.00", "INR"),
        reason="customer asked",
        status=RefundState.INITIATED,
        speed=RefundSpeed.INSTANT,
        idempotency_key=f"key_{suffix}",
        created_at=created_at,
        updated_at=created_at,
    )
    return replace(refund, **changes)


async def stored_payment(uow_factory: UnitOfWorkFactory) -> Payment:
    payment = new_payment()
    async with uow_factory() as uow:
        await uow.payments.add(payment)
    return payment


async def stored_payment_in(uow: UnitOfWork) -> Payment:
    payment = new_payment()
    await uow.payments.add(payment)
    return payment


async def stored(uow_factory: UnitOfWorkFactory, refund_id: str) -> Refund:
    async with uow_factory() as uow:
        return await uow.refunds.get(refund_id)


async def a_refund_round_trips_with_every_field(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    refund = new_refund(
        payment,
        status=RefundState.SUCCESS,
        gateway_refund_id="cf_rf_1",
        status_description="Refund processed",
        retry_count=2,
        version=3,
        processed_at=NOW + timedelta(hours=1),
    )
    async with uow_factory() as uow:
        assert await uow.refunds.add(refund) is True

    assert await stored(uow_factory, refund.refund_id) == refund


async def adding_the_same_refund_twice_writes_it_once(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    refund = new_refund(payment)
    async with uow_factory() as uow:
        assert await uow.refunds.add(refund) is True
    async with uow_factory() as uow:
        assert await uow.refunds.add(replace(refund, reason="changed")) is False

    assert (await stored(uow_factory, refund.refund_id)).reason == "customer asked"


async def a_missing_refund_is_not_found(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.refunds.get("rf_missing")


async def a_reused_idempotency_key_under_another_refund_id_is_a_conflict(
    uow_factory: UnitOfWorkFactory,
) -> None:
    payment = await stored_payment(uow_factory)
    first = new_refund(payment)
    async with uow_factory() as uow:
        await uow.refunds.add(first)

    other = new_refund(payment)
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.refunds.add(replace(other, idempotency_key=first.idempotency_key))
        # The refusal leaves the transaction usable: the same refund under a fresh key goes in.
        assert await uow.refunds.add(other) is True

    async with uow_factory() as uow:
        found = await uow.refunds.for_payment(payment.payment_id)
    assert {r.refund_id for r in found} == {first.refund_id, other.refund_id}


async def refunds_without_an_idempotency_key_never_clash(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    refunds = [new_refund(payment, idempotency_key=None) for _ in range(2)]
    async with uow_factory() as uow:
        assert [await uow.refunds.add(r) for r in refunds] == [True, True]


async def a_transition_is_saved_with_its_new_fields(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    refund = new_refund(payment)
    async with uow_factory() as uow:
        await uow.refunds.add(refund)
    submitted = refund.moved(RefundTrigger.SUBMIT, now=NOW + timedelta(minutes=1), gateway_refund_id="cf_1")
    succeeded = submitted.moved(RefundTrigger.SUCCEED, now=NOW + timedelta(minutes=2))
    async with uow_factory() as uow:
        await uow.refunds.save(refund, submitted, RefundTrigger.SUBMIT)
        await uow.refunds.save(submitted, succeeded, RefundTrigger.SUCCEED)

    assert await stored(uow_factory, refund.refund_id) == succeeded
    assert succeeded.processed_at == NOW + timedelta(minutes=2)


async def a_stale_version_or_a_state_the_trigger_cannot_leave_is_refused(
    uow_factory: UnitOfWorkFactory,
) -> None:
    payment = await stored_payment(uow_factory)
    refund = new_refund(payment)
    async with uow_factory() as uow:
        await uow.refunds.add(refund)

    # INITIATED cannot succeed; the repository refuses even an ``after`` that skips the domain check.
    jumped = replace(refund, status=RefundState.SUCCESS, version=refund.version + 1)
    async with uow_factory() as uow:
        with pytest.raises(ConcurrentTransition):
            await uow.refunds.save(refund, jumped, RefundTrigger.SUCCEED)

    submitted = refund.moved(RefundTrigger.SUBMIT, now=NOW)
    async with uow_factory() as uow:
        await uow.refunds.save(refund, submitted, RefundTrigger.SUBMIT)
    # A second writer that read the INITIATED row loses: version and state have moved on.
    async with uow_factory() as uow:
        with pytest.raises(ConcurrentTransition):
            await uow.refunds.save(refund, refund.moved(RefundTrigger.FAIL, now=NOW), RefundTrigger.FAIL)
    assert await stored(uow_factory, refund.refund_id) == submitted


async def a_field_only_save_keeps_the_state_and_is_guarded_on_it(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    refund = new_refund(payment, status=RefundState.PROCESSING)
    async with uow_factory() as uow:
        await uow.refunds.add(refund)
    on_hold = replace(
        refund, status_description="ONHOLD: bank verification", version=refund.version + 1, updated_at=NOW
    )
    async with uow_factory() as uow:
        await uow.refunds.save(refund, on_hold, None)
    assert await stored(uow_factory, refund.refund_id) == on_hold

    # A writer that read the row before that change cannot overwrite it.
    async with uow_factory() as uow:
        with pytest.raises(ConcurrentTransition):
            await uow.refunds.save(refund, replace(on_hold, retry_count=1), None)
    # Nor can a field-only save that believes the refund is in another state.
    async with uow_factory() as uow:
        with pytest.raises(ConcurrentTransition):
            await uow.refunds.save(replace(on_hold, status=RefundState.INITIATED), on_hold, None)


async def a_payments_refunds_come_oldest_first(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    later = new_refund(payment, created_at=NOW + timedelta(minutes=5))
    earlier = new_refund(payment, created_at=NOW)
    twin = replace(new_refund(payment, created_at=NOW), refund_id=earlier.refund_id + "_b")
    async with uow_factory() as uow:
        for refund in (later, twin, earlier):
            await uow.refunds.add(refund)
        await uow.refunds.add(new_refund(await stored_payment_in(uow)))

    async with uow_factory() as uow:
        found = await uow.refunds.for_payment(payment.payment_id)
    assert [r.refund_id for r in found] == [earlier.refund_id, twin.refund_id, later.refund_id]


async def the_poll_picks_only_old_initiated_or_processing_refunds_oldest_first(
    uow_factory: UnitOfWorkFactory,
) -> None:
    payment = await stored_payment(uow_factory)
    oldest = new_refund(payment, created_at=LONG_AGO)
    old = new_refund(payment, created_at=LONG_AGO + timedelta(seconds=1), status=RefundState.PROCESSING)
    settled = [
        new_refund(payment, created_at=LONG_AGO, status=state)
        for state in (RefundState.SUCCESS, RefundState.FAILED, RefundState.REVERSED)
    ]
    recent = new_refund(payment, created_at=NOW)
    async with uow_factory() as uow:
        for refund in (old, *settled, recent, oldest):
            await uow.refunds.add(refund)

    async with uow_factory() as uow:
        found = await uow.refunds.unsettled(updated_before=NOW - timedelta(minutes=1), limit=1000)
        first = await uow.refunds.unsettled(updated_before=LONG_AGO + timedelta(seconds=1), limit=1000)
    mine = [r.refund_id for r in found if r.payment_id == payment.payment_id]
    assert mine == [oldest.refund_id, old.refund_id]
    assert oldest.refund_id in {r.refund_id for r in first}
    assert old.refund_id not in {r.refund_id for r in first}


async def the_poll_returns_at_most_its_limit(uow_factory: UnitOfWorkFactory) -> None:
    payment = await stored_payment(uow_factory)
    async with uow_factory() as uow:
        for _ in range(3):
            await uow.refunds.add(new_refund(payment, created_at=LONG_AGO))

    async with uow_factory() as uow:
        assert len(await uow.refunds.unsettled(updated_before=NOW, limit=2)) == 2


async def a_rolled_back_write_leaves_nothing(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment()
    refund = new_refund(payment)

    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.payments.add(payment)
            await uow.refunds.add(refund)
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await add_then_fail()

    async with uow_factory() as uow:
        with pytest.raises(NotFound):
            await uow.refunds.get(refund.refund_id)
        assert await uow.refunds.for_payment(payment.payment_id) == []


REFUND_CONTRACTS = [
    a_refund_round_trips_with_every_field,
    adding_the_same_refund_twice_writes_it_once,
    a_missing_refund_is_not_found,
    a_reused_idempotency_key_under_another_refund_id_is_a_conflict,
    refunds_without_an_idempotency_key_never_clash,
    a_transition_is_saved_with_its_new_fields,
    a_stale_version_or_a_state_the_trigger_cannot_leave_is_refused,
    a_field_only_save_keeps_the_state_and_is_guarded_on_it,
    a_payments_refunds_come_oldest_first,
    the_poll_picks_only_old_initiated_or_processing_refunds_oldest_first,
    the_poll_returns_at_most_its_limit,
    a_rolled_back_write_leaves_nothing,
]

"""Settling payments from the gateway's settlements, over behavioural fakes."""

from __future__ import annotations

from dataclasses import replace

from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.service import SYSTEM
from payments.domain.payment.states import PaymentState
from tests.unit.test_payment_service import World, create_command


async def paid(world: World, n: int = 1) -> str:
    payment = await world.service.create(create_command(n))
    world.gateway.attempt(payment.order_id, AttemptStatus.SUCCESS)
    return payment.order_id


async def stored(world: World, payment_id: str = "pay_1"):
    async with world.store.unit_of_work() as uow:
        return await uow.payments.get(payment_id), await uow.settlements.for_payment(payment_id)


async def test_a_successful_payment_settles_with_its_settlement_amount():
    world = World()
    order_id = await paid(world)
    await world.service.reconcile((await stored(world))[0], SYSTEM)
    settlement = world.gateway.settle(order_id, settlement_id="stl_9", utr="UTR9")

    settled = await world.service.settle(settlement, SYSTEM)

    payment, [row] = await stored(world)
    assert settled == payment
    assert (payment.status, payment.settlement_status) == (PaymentState.SETTLED, "SETTLED")
    assert payment.settlement_amount == Money.of("496.64", "INR")
    assert (row.settlement_id, row.utr) == ("stl_9", "UTR9")
    assert world.audit_actions("pay_1")[-1] == "payment.settle"
    assert world.events("pay_1").count("payment.settled") == 1


async def test_a_pending_payment_the_gateway_says_was_paid_succeeds_then_settles():
    world = World()
    order_id = await paid(world)  # we never heard of the success: still PENDING
    assert (await stored(world))[0].status is PaymentState.PENDING

    await world.service.settle(world.gateway.settle(order_id), SYSTEM)

    payment, _ = await stored(world)
    assert payment.status is PaymentState.SETTLED
    assert world.audit_actions("pay_1")[-2:] == ["payment.succeed", "payment.settle"]
    assert {"payment.success", "payment.settled"} <= set(world.events("pay_1"))


async def test_the_same_settlement_applied_twice_changes_nothing():
    world = World()
    order_id = await paid(world)
    settlement = world.gateway.settle(order_id)
    await world.service.settle(settlement, SYSTEM, inbox_consumer="reconciliation")
    audit, events = len(world.store.audit_rows), len(world.store.outbox_events)

    again = await world.service.settle(settlement, SYSTEM, inbox_consumer="reconciliation")
    once_more = await world.service.settle(settlement, SYSTEM)

    assert again is not None
    assert once_more is not None
    assert again.status is once_more.status is PaymentState.SETTLED
    assert (len(world.store.audit_rows), len(world.store.outbox_events)) == (audit, events)
    assert len((await stored(world))[1]) == 1


async def test_a_settlement_for_an_order_we_do_not_know_is_kept_as_an_orphan():
    world = World()
    order_id = await paid(world)
    foreign = replace(world.gateway.settle(order_id), order_id="ord_foreign")

    assert await world.service.settle(foreign, SYSTEM) is None

    [row] = world.store.reconciliation_tables.settlements.values()
    assert (row.settlement.order_id, row.payment_id) == ("ord_foreign", None)


async def test_a_stuck_payment_whose_gateway_amount_differs_is_not_credited_but_its_settlement_is_kept():
    world = World()
    order_id = await paid(world)
    settlement = world.gateway.settle(order_id)
    world.gateway.tamper_amount(order_id, Money.of("1.00", "INR"))

    payment = await world.service.settle(settlement, SYSTEM)

    assert payment is not None
    assert payment.status is PaymentState.PENDING
    _, [row] = await stored(world)
    assert row.settlement_id == settlement.settlement_id
    assert "payment.verify_mismatch" in world.audit_actions("pay_1")


async def test_a_payout_for_another_amount_is_kept_but_does_not_settle_the_payment():
    world = World()
    order_id = await paid(world)
    await world.service.reconcile((await stored(world))[0], SYSTEM)
    settlement = replace(world.gateway.settle(order_id), order_amount=Money.of("10.00", "INR"))

    await world.service.settle(settlement, SYSTEM)

    payment, [row] = await stored(world)
    assert (payment.status, payment.settlement_amount) == (PaymentState.SUCCESS, None)
    assert row.settlement_id == settlement.settlement_id  # kept for the reconciliation run to report

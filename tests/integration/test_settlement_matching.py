"""Settlement evidence settles payments in PostgreSQL: SETTLED with amount and UTR, audited, once."""

from __future__ import annotations

import os
import random
import uuid
from dataclasses import replace
from functools import partial

import pytest

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.service import SYSTEM, PaymentService
from payments.domain.payment.states import PaymentState
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.unit.test_payment_service import NOW, create_command

CIPHER = PiiCipher(os.urandom(32))


class World:
    def __init__(self, pool) -> None:
        self.pool = pool
        self.gateway = InMemoryGateway(now=NOW, first_id=random.randrange(10**12))
        self.service = PaymentService(
            unit_of_work=partial(pg_unit_of_work, pool, cipher=CIPHER),
            gateway=self.gateway,
            locks=InMemoryPaymentLocks(),
            clock=FixedClock(NOW),
        )

    async def paid(self) -> tuple[str, str]:
        """A payment the customer paid at the gateway; ours still says PENDING."""
        suffix = uuid.uuid4().hex[:12]
        command = replace(create_command(), payment_id=f"pay_{suffix}", order_id=f"ord_{suffix}")
        payment = await self.service.create(command)
        self.gateway.attempt(payment.order_id, AttemptStatus.SUCCESS)
        return payment.payment_id, payment.order_id

    async def payment(self, payment_id: str):
        async with pg_unit_of_work(self.pool, cipher=CIPHER) as uow:
            return await uow.payments.get(payment_id)

    async def audit_actions(self, payment_id: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT action FROM audit_logs WHERE resource_id = $1 ORDER BY id", payment_id
        )
        return [row["action"] for row in rows]

    async def settlement_rows(self, order_id: str):
        return await self.pool.fetch("SELECT * FROM settlements WHERE order_id = $1", order_id)


@pytest.fixture
def world(pg_pool) -> World:
    return World(pg_pool)


async def test_a_successful_payment_and_its_settlement_end_settled_with_amount_utr_and_audit(world):
    payment_id, order_id = await world.paid()
    await world.service.reconcile(await world.payment(payment_id), SYSTEM)
    settlement = world.gateway.settle(order_id, settlement_id="cf_stl_1", utr="UTR1234")

    await world.service.settle(settlement, SYSTEM)

    payment = await world.payment(payment_id)
    assert (payment.status, payment.settlement_status) == (PaymentState.SETTLED, "SETTLED")
    assert payment.settlement_amount == Money.of("496.64", "INR")
    [row] = await world.settlement_rows(order_id)
    assert (row["payment_id"], row["utr"], row["settlement_id"]) == (payment_id, "UTR1234", "cf_stl_1")
    assert (row["order_amount"], row["settlement_amount"]) == (
        Money.of("499.00", "INR").amount,
        payment.settlement_amount.amount,
    )
    assert (await world.audit_actions(payment_id))[-1] == "payment.settle"
    outbox = await world.pool.fetch(
        "SELECT routing_key FROM outbox WHERE payload->>'paymentId' = $1", payment_id
    )
    assert [r["routing_key"] for r in outbox].count("payment.settled") == 1


async def test_a_pending_payment_the_gateway_says_was_paid_ends_settled_with_audit_rows(world):
    payment_id, order_id = await world.paid()
    assert (await world.payment(payment_id)).status is PaymentState.PENDING

    await world.service.settle(world.gateway.settle(order_id), SYSTEM)

    assert (await world.payment(payment_id)).status is PaymentState.SETTLED
    assert (await world.audit_actions(payment_id))[-2:] == ["payment.succeed", "payment.settle"]


async def test_the_same_settlement_applied_twice_changes_nothing(world):
    payment_id, order_id = await world.paid()
    settlement = world.gateway.settle(order_id)
    await world.service.settle(settlement, SYSTEM, inbox_consumer="reconciliation")
    before = (await world.payment(payment_id), await world.audit_actions(payment_id))

    await world.service.settle(settlement, SYSTEM, inbox_consumer="reconciliation")
    await world.service.settle(settlement, SYSTEM)

    assert (await world.payment(payment_id), await world.audit_actions(payment_id)) == before
    assert len(await world.settlement_rows(order_id)) == 1


async def test_a_settlement_of_an_order_we_do_not_know_is_kept_without_a_payment(world):
    _, order_id = await world.paid()
    foreign = replace(world.gateway.settle(order_id), order_id=f"ord_foreign_{uuid.uuid4().hex[:8]}")

    assert await world.service.settle(foreign, SYSTEM) is None

    [row] = await world.settlement_rows(foreign.order_id)
    assert row["payment_id"] is None

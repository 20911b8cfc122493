"""The over-refund guard on the real PostgreSQL: concurrent refunds against one payment, checked in SQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import replace
from functools import partial

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.commands import VerifyPayment
from payments.domain.payment.service import PaymentService
from payments.domain.refund.commands import RequestRefund
from payments.domain.refund.service import RefundExceedsBalance, RefundService
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.unit.test_payment_service import NOW, OWNER, create_command


async def test_fifty_concurrent_partial_refunds_never_exceed_the_captured_amount_in_the_database(pg_pool):
    uow = partial(pg_unit_of_work, pg_pool, cipher=PiiCipher(os.urandom(32)))
    gateway, locks, clock = InMemoryGateway(now=NOW), InMemoryPaymentLocks(), FixedClock(NOW)
    payments = PaymentService(unit_of_work=uow, gateway=gateway, locks=locks, clock=clock)
    refunds = RefundService(unit_of_work=uow, gateway=gateway, locks=locks, clock=clock)
    suffix = uuid.uuid4().hex[:10]
    command = replace(create_command(), payment_id=f"pay_{suffix}", order_id=f"ord_{suffix}")
    payment = await payments.create(command)
    gateway.attempt(payment.order_id, AttemptStatus.SUCCESS)
    await payments.verify(VerifyPayment(payment_id=payment.payment_id, actor=OWNER))

    def ask(n: int) -> RequestRefund:
        return RequestRefund(
            refund_id=f"rf_{suffix}_{n}",
            payment_id=payment.payment_id,
            amount=Money.of("25.00", "INR"),
            reason="customer asked",
            actor=OWNER,
        )

    results = await asyncio.gather(*(refunds.request(ask(n)) for n in range(50)), return_exceptions=True)

    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(error, RefundExceedsBalance) for error in refused), refused[:3]
    held = await pg_pool.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM refunds "
        "WHERE payment_id = $1 AND status NOT IN ('FAILED', 'REVERSED')",
        payment.payment_id,
    )
    assert held == 475  # 19 x 25.00: a 20th would be 500.00 > 499.00
    assert len(gateway.refunds) == 19

"""Reconciliation runs on the real PostgreSQL, with the in-memory gateway seeded for each mismatch kind.

Each test reconciles a week of its own in 2031, so the payments other tests leave in
the session's database never fall into its range. The clean world of every test: a payment we
recorded as paid, reported by the gateway and settled a day later with amounts that add up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import os
import random
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.gateway import AttemptStatus, GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money
from payments.domain.payment.commands import VerifyPayment
from payments.domain.payment.service import PaymentService
from payments.domain.payment.states import PaymentState
from payments.domain.reconciliation.model import RunStatus
from payments.domain.reconciliation.report import report_csv, report_json
from payments.domain.reconciliation.service import ReconciliationService, RunInProgress
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.domain.webhook.intake import ReceivedWebhook
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.unit.test_payment_service import OWNER, create_command

SLA = timedelta(hours=72)
_FORTNIGHTS = itertools.count()


class SeededGateway(InMemoryGateway):
    """The in-memory gateway with reconciliation reports tests write, and a settlements call that
    can be held open (``hold``) so a test can act while a run is inside it."""

    def __init__(self, *, now: datetime) -> None:
        super().__init__(now=now)
        self.entries: list[ReconciliationEntry] = []
        self.settlement_entries: list[ReconciliationEntry] = []
        self.hold = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        # Gateway order and attempt ids are UNIQUE in the shared database: each test its own series.
        self._ids = itertools.count(random.randrange(10**6, 10**12))

    async def settlements(self, start: datetime, end: datetime) -> list[GatewaySettlement]:
        if self.hold:
            self.entered.set()
            await self.release.wait()
        return list(await super().settlements(start, end))

    async def reconciliation(self, start: datetime, end: datetime) -> list[ReconciliationEntry]:
        return [e for e in self.entries if e.occurred_at is not None and start <= e.occurred_at < end]

    async def settlement_reconciliation(self, start: datetime, end: datetime) -> list[ReconciliationEntry]:
        return list(self.settlement_entries)

    def report_capture(self, order_id: str, *, attempt_id: str | None = None) -> ReconciliationEntry:
        """The PAYMENT row of the order's successful attempt (or of another attempt id: charged twice)."""
        paid = next(a for a in self.order_attempts[order_id] if a.status is AttemptStatus.SUCCESS)
        row = payment_row(order_id, attempt_id or paid.attempt_id, paid.amount, paid.completed_at)
        self.entries.append(row)
        return row


def payment_row(order_id: str, attempt_id: str, amount: Money, at: datetime | None) -> ReconciliationEntry:
    return ReconciliationEntry(
        event_id=f"evt_{attempt_id}",
        event_type="PAYMENT",
        amount=amount,
        settlement_amount=None,
        status="SUCCESS",
        occurred_at=at,
        order_id=order_id,
        attempt_id=attempt_id,
        refund_id=None,
        settlement_id=None,
        utr=None,
    )


@dataclass
class World:
    payments: PaymentService
    reconciliation: ReconciliationService
    gateway: SeededGateway
    clock: FixedClock
    start: datetime
    end: datetime
    unit_of_work: UnitOfWorkFactory
    suffix: str

    async def paid(self, name: str, *, verified: bool = True, amount: str = "499.00") -> tuple[str, str]:
        """A payment the customer paid; ``verified`` if we recorded the success. (payment id, order id)"""
        payment_id, order_id = f"pay_{self.suffix}_{name}", f"ord_{self.suffix}_{name}"
        command = replace(create_command(amount=amount), payment_id=payment_id, order_id=order_id)
        await self.payments.create(command)
        self.gateway.attempt(order_id, AttemptStatus.SUCCESS)
        if verified:
            await self.payments.verify(VerifyPayment(payment_id=payment_id, actor=OWNER))
        return payment_id, order_id

    async def clean(self, name: str) -> tuple[str, str]:
        """Paid, reported and settled a day later: nothing to find."""
        payment_id, order_id = await self.paid(name)
        self.gateway.report_capture(order_id)
        self.gateway.settle(
            order_id, settlement_id=f"stl_{self.suffix}", at=self.clock.current + timedelta(days=1)
        )
        return payment_id, order_id

    async def run(self):
        self.clock.current = self.start + timedelta(days=10)
        return await self.reconciliation.run(self.start, self.end, trigger="cli")

    async def items(self, run_id: str):
        async with self.unit_of_work() as uow:
            return await uow.reconciliation.items(run_id)

    async def status(self, payment_id: str) -> PaymentState:
        async with self.unit_of_work() as uow:
            return (await uow.payments.get(payment_id)).status


@pytest.fixture
def world(pg_pool) -> World:
    # A fortnight of its own in 2031, far from every other test's clock (the database lives for one
    # session, so a counter keeps the tests apart); the payments fall on its first day.
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(weeks=2 * next(_FORTNIGHTS))
    clock = FixedClock(start + timedelta(hours=6))
    gateway = SeededGateway(now=clock.current)
    unit_of_work = partial(pg_unit_of_work, pg_pool, cipher=PiiCipher(os.urandom(32)))
    payments = PaymentService(
        unit_of_work=unit_of_work, gateway=gateway, locks=InMemoryPaymentLocks(), clock=clock
    )
    service = ReconciliationService(
        unit_of_work=unit_of_work,
        gateway=gateway,
        payments=payments,
        clock=clock,
        settlement_sla=SLA,
        webhook_grace=timedelta(minutes=30),
    )
    return World(
        payments,
        service,
        gateway,
        clock,
        start,
        start + timedelta(days=7),
        unit_of_work,
        uuid.uuid4().hex[:10],
    )


async def test_clean_data_gives_no_finding_and_settles_the_payment(world):
    payment_id, _ = await world.clean("a")

    run = await world.run()

    assert run.status is RunStatus.SUCCEEDED
    assert run.counts == {}
    assert await world.items(run.run_id) == []
    assert await world.status(payment_id) is PaymentState.SETTLED


async def test_a_payment_never_settled_is_a_missing_settlement(world):
    await world.clean("a")
    payment_id, order_id = await world.paid("b")
    world.gateway.report_capture(order_id)

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert run.counts == {"missing_settlement": 1}
    assert (item.finding.kind, item.finding.payment_id) == ("missing_settlement", payment_id)
    assert item.finding.ours["payment"]["order_id"] == order_id
    succeeded_at = datetime.fromisoformat(item.finding.difference["succeeded_at"])
    assert world.start <= succeeded_at < world.start + timedelta(days=1)
    assert item.finding.difference["settle_by"] == (succeeded_at + SLA).isoformat()


async def test_a_settlement_past_the_sla_is_delayed(world):
    payment_id, order_id = await world.paid("b")
    world.gateway.report_capture(order_id)
    world.gateway.settle(order_id, settlement_id="stl_late", at=world.clock.current + timedelta(days=4))

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.payment_id) == ("delayed_settlement", payment_id)
    # Settled four days after the order opened; the capture completed a second after it opened.
    assert int(item.finding.difference["late_by_seconds"]) == 24 * 3600 - 1
    assert [s["settlement_id"] for s in item.finding.theirs["settlements"]] == ["stl_late"]


async def test_an_order_charged_twice_at_the_gateway_is_a_duplicate_transaction(world):
    _, order_id = await world.clean("a")
    world.gateway.report_capture(order_id, attempt_id="cf_second_charge")

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.key) == (
        "duplicate_transaction",
        f"duplicate_transaction:order:{order_id}",
    )
    assert "cf_second_charge" in item.finding.difference["successful_attempt_ids"]
    assert len(item.finding.difference["successful_attempt_ids"]) == 2


async def test_a_gateway_refund_we_never_made_is_an_inconsistent_refund(world):
    payment_id, order_id = await world.clean("a")
    world.gateway.entries.append(
        replace(
            payment_row(
                order_id, "cf_r", Money.of("-50.00", "INR"), world.clock.current + timedelta(hours=1)
            ),
            event_id="evt_refund_x",
            event_type="REFUND",
            refund_id="rf_unknown",
        )
    )

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.key) == (
        "inconsistent_refund",
        "inconsistent_refund:gateway:rf_unknown",
    )
    assert item.finding.difference == {"missing": "ours", "status": "SUCCESS", "amount": "50.00"}
    assert item.finding.payment_id == payment_id


async def test_a_gateway_payment_for_an_order_we_do_not_know_is_an_orphan(world):
    await world.clean("a")
    stranger = f"ord_{world.suffix}_stranger"
    world.gateway.entries.append(
        payment_row(stranger, "cf_stranger", Money.of("10.00", "INR"), world.clock.current)
    )

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.payment_id) == ("orphan_gateway_payment", None)
    assert item.finding.difference == {
        "order_id": stranger,
        "attempt_ids": ["cf_stranger"],
        "reason": "unknown_order",
    }


async def test_a_payment_the_gateway_knows_nothing_about_is_an_orphan_of_ours(world):
    await world.clean("a")
    payment_id, order_id = await world.paid("b")

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.payment_id) == ("orphan_payment", payment_id)
    assert item.finding.difference["order_id"] == order_id


async def test_a_webhook_never_processed_is_reported(world):
    await world.clean("a")
    body = b'{"type": "PAYMENT_SUCCESS_WEBHOOK"}'
    async with world.unit_of_work() as uow:
        log = await uow.webhooks.record(
            ReceivedWebhook(
                provider="cashfree",
                dedup_key=f"cf_evt_{world.suffix}",
                event_type="PAYMENT_SUCCESS_WEBHOOK",
                body_b64=base64.b64encode(body).decode(),
                body_hash=hashlib.sha256(body).hexdigest(),
                headers={},
                received_at=world.clock.current,
            )
        )

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.key) == ("unprocessed_webhook", f"unprocessed_webhook:{log.id}")
    assert item.finding.difference["status"] == "RECEIVED"


async def test_a_settlement_that_does_not_add_up_is_an_amount_mismatch(world):
    payment_id, order_id = await world.paid("a")
    world.gateway.report_capture(order_id)
    payout = world.gateway.settle(
        order_id, settlement_id="stl_short", at=world.clock.current + timedelta(days=1)
    )
    world.gateway.payouts[-1] = replace(payout, settlement_amount=Money.of("490.00", "INR"))

    run = await world.run()

    [item] = await world.items(run.run_id)
    assert (item.finding.kind, item.finding.key) == (
        "amount_mismatch",
        f"amount_mismatch:{payment_id}:settlement:stl_short",
    )
    assert (item.finding.difference["expected"], item.finding.difference["actual"]) == ("496.64", "490.00")
    assert item.finding.difference["delta"] == "-6.64"


async def test_a_stuck_pending_payment_the_gateway_settled_ends_settled_with_an_audit_row(world, pg_pool):
    payment_id, order_id = await world.paid("a", verified=False)
    world.gateway.report_capture(order_id)
    world.gateway.settle(order_id, settlement_id="stl_p", at=world.clock.current + timedelta(days=1))

    await world.run()

    assert await world.status(payment_id) is PaymentState.SETTLED
    actions = await pg_pool.fetch(
        "SELECT action, actor_id FROM audit_logs WHERE resource_id = $1 ORDER BY id", payment_id
    )
    assert [(a["action"], a["actor_id"]) for a in actions][-2:] == [
        ("payment.succeed", "system"),
        ("payment.settle", "system"),
    ]


async def test_running_again_on_the_same_inputs_gives_a_byte_identical_report(world):
    await world.clean("a")
    _, order_id = await world.paid("b")
    world.gateway.report_capture(order_id)

    first = await world.run()
    second = await world.run()

    first_items, second_items = await world.items(first.run_id), await world.items(second.run_id)
    assert first.input_digest == second.input_digest
    assert report_json(second, second_items) == report_json(first, first_items)
    assert report_csv(second, second_items) == report_csv(first, first_items)


async def test_two_concurrent_runs_of_one_range_one_is_refused(world):
    await world.clean("a")
    world.gateway.hold = True
    world.clock.current = world.start + timedelta(days=10)
    first = asyncio.create_task(world.reconciliation.run(world.start, world.end, trigger="schedule"))
    await world.gateway.entered.wait()

    with pytest.raises(RunInProgress):
        await world.reconciliation.run(world.start, world.end, trigger="admin")

    world.gateway.release.set()
    assert (await first).status is RunStatus.SUCCEEDED

"""The reconciliation service over behavioural fakes: storage, gateway, payments and the range lock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.alerts.model import Alert
from payments.domain.errors import DependencyUnavailable, NotFound
from payments.domain.gateway import AttemptStatus, GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, CreatePayment, VerifyPayment
from payments.domain.payment.model import CustomerDetails
from payments.domain.payment.service import PaymentService
from payments.domain.payment.states import PaymentState
from payments.domain.reconciliation.model import ReconciliationRun, Resolution, RunStatus, StoredItem
from payments.domain.reconciliation.service import (
    ALERT_KIND,
    IST,
    RangeInvalid,
    ReconciliationService,
    RunInProgress,
    failure_text,
    parse_bound,
    scheduled_range,
)
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.storage import InMemoryStore

#: The payments are made on 20 November (IST) and the runs happen a week later, past the 72 h SLA.
PAID_AT = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
START = datetime(2026, 11, 20, tzinfo=IST)
END = datetime(2026, 11, 21, tzinfo=IST)
OWNER = Actor(actor_id="user-1", trace_id="a" * 32, request_id="r1")


class BlockingGateway(InMemoryGateway):
    """Reports each paid order's capture in its reconciliation report, as Cashfree does; and holds
    ``settlements`` until released when ``block`` is set, so a test can act while a run is inside it."""

    def __init__(self, *, now: datetime) -> None:
        super().__init__(now=now)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.block = False

    async def reconciliation(self, start: datetime, end: datetime) -> list[ReconciliationEntry]:
        return [
            ReconciliationEntry(
                event_id=f"evt_{attempt.attempt_id}",
                event_type="PAYMENT",
                amount=attempt.amount,
                settlement_amount=None,
                status="SUCCESS",
                occurred_at=attempt.completed_at,
                order_id=attempt.order_id,
                attempt_id=attempt.attempt_id,
                refund_id=None,
                settlement_id=None,
                utr=None,
            )
            for attempts in self.order_attempts.values()
            for attempt in attempts
            if attempt.status is AttemptStatus.SUCCESS
            and attempt.completed_at is not None
            and start <= attempt.completed_at < end
        ]

    async def settlements(self, start: datetime, end: datetime) -> list[GatewaySettlement]:
        if self.block:
            self.entered.set()
            await self.release.wait()
        return list(await super().settlements(start, end))


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.clock = FixedClock(PAID_AT)
        self.gateway = BlockingGateway(now=PAID_AT)
        self.payments = PaymentService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            locks=InMemoryPaymentLocks(),
            clock=self.clock,
        )
        self.service = ReconciliationService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            payments=self.payments,
            clock=self.clock,
            settlement_sla=timedelta(hours=72),
            webhook_grace=timedelta(minutes=30),
        )

    async def paid(self, n: int, *, verified: bool = True) -> str:
        """A payment of ours that the customer paid at the gateway; ``verified`` if we saw the success."""
        payment = await self.payments.create(
            CreatePayment(
                payment_id=f"pay_{n}",
                order_id=f"ord_{n}",
                user_id="user-1",
                amount=Money.of("499.00", "INR"),
                customer=CustomerDetails(name="Asha Rao", email="asha@example.com", phone="9876543210"),
                description="CommDesk Pro",
                notify_url=None,
                actor=OWNER,
            )
        )
        self.gateway.attempt(f"ord_{n}", AttemptStatus.SUCCESS)
        if verified:
            await self.payments.verify(VerifyPayment(payment_id=payment.payment_id, actor=OWNER))
        return payment.payment_id

    async def status(self, payment_id: str) -> PaymentState:
        async with self.store.unit_of_work() as uow:
            return (await uow.payments.get(payment_id)).status

    async def history(self) -> list[ReconciliationRun]:
        async with self.store.unit_of_work() as uow:
            return list(await uow.reconciliation.runs(50))

    async def items(self, run_id: str) -> list[StoredItem]:
        async with self.store.unit_of_work() as uow:
            return list(await uow.reconciliation.items(run_id))

    async def alerts(self) -> list[Alert]:
        async with self.store.unit_of_work() as uow:
            return [stored.alert for stored in await uow.alerts.recent(limit=50)]


@pytest.fixture
def world() -> World:
    return World()


async def test_a_run_finds_a_payment_never_settled_records_it_and_alerts_once(world):
    payment_id = await world.paid(1)
    world.clock.current = NOW

    run = await world.service.run(START, END, trigger="cli")

    assert run.status is RunStatus.SUCCEEDED
    assert run.counts == {"missing_settlement": 1}
    assert run.input_digest
    assert run.finished_at == NOW
    items = await world.items(run.run_id)
    assert [(item.finding.kind.value, item.finding.payment_id) for item in items] == [
        ("missing_settlement", payment_id)
    ]
    alerts = await world.alerts()
    assert [(a.kind, a.subject, a.details["counts"]) for a in alerts] == [
        (ALERT_KIND, "run:2026-11-20..2026-11-21", {"missing_settlement": 1})
    ]
    assert [r.run_id for r in await world.history()] == [run.run_id]


async def test_running_again_finds_the_same_item_raises_no_new_alert_and_writes_the_same_report(world):
    await world.paid(1)
    world.clock.current = NOW
    first = await world.service.run(START, END, trigger="cli")
    world.clock.current = NOW + timedelta(hours=2)  # past the alert cooldown: only novelty could alert

    second = await world.service.run(START, END, trigger="cli")

    assert second.counts == first.counts
    assert second.input_digest == first.input_digest
    first_items, second_items = await world.items(first.run_id), await world.items(second.run_id)
    assert [i.item_id for i in second_items] == [i.item_id for i in first_items]
    assert second_items[0].first_run_id == first.run_id
    assert len(await world.alerts()) == 1


async def test_settlement_evidence_settles_payments_and_resolves_the_earlier_mismatch(world):
    payment_id = await world.paid(1)
    world.clock.current = NOW
    before = await world.service.run(START, END, trigger="schedule")
    world.gateway.settle("ord_1", at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC))

    after = await world.service.run(START, END, trigger="schedule")

    assert await world.status(payment_id) is PaymentState.SETTLED
    assert after.counts == {}
    [item] = await world.items(before.run_id)
    assert item.resolution is Resolution.RESOLVED
    assert item.resolved_by_run == after.run_id


async def test_a_payment_stuck_pending_that_the_gateway_settled_ends_settled_with_an_audit_row(world):
    payment_id = await world.paid(1, verified=False)
    assert await world.status(payment_id) is not PaymentState.SUCCESS
    world.gateway.settle("ord_1", at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    world.clock.current = NOW

    run = await world.service.run(START, END, trigger="cli")

    assert run.status is RunStatus.SUCCEEDED
    assert await world.status(payment_id) is PaymentState.SETTLED
    actions = [r.entry.action for r in world.store.audit_rows if r.entry.resource_id == payment_id]
    assert actions[-2:] == ["payment.succeed", "payment.settle"]
    assert all(r.entry.actor_id == "system" for r in world.store.audit_rows[-2:])


async def test_a_second_run_of_a_range_in_progress_is_refused_and_the_first_finishes(world):
    world.clock.current = NOW
    world.gateway.block = True
    first = asyncio.create_task(world.service.run(START, END, trigger="schedule"))
    await world.gateway.entered.wait()

    with pytest.raises(RunInProgress) as refused:
        await world.service.run(START, END, trigger="admin")

    assert refused.value.code == "reconciliation_in_progress"
    [running] = await world.history()
    assert running.status is RunStatus.RUNNING
    world.gateway.release.set()
    assert (await first).status is RunStatus.SUCCEEDED
    assert len(await world.history()) == 1


async def test_a_failed_run_is_recorded_with_its_reason_and_can_be_rerun(world):
    world.clock.current = NOW
    world.gateway.fail_next = [DependencyUnavailable("cashfree did not answer")]

    with pytest.raises(DependencyUnavailable):
        await world.service.run(START, END, trigger="schedule")

    [failed] = await world.history()
    assert failed.status is RunStatus.FAILED
    assert failed.error == "dependency_unavailable: cashfree did not answer"
    assert failed.finished_at == NOW
    rerun = await world.service.rerun(failed.run_id)
    assert (rerun.status, rerun.trigger, rerun.rerun_of) == (RunStatus.SUCCEEDED, "rerun", failed.run_id)
    assert (rerun.start, rerun.end) == (START, END)


async def test_a_cancelled_run_does_not_stay_running(world):
    world.clock.current = NOW
    world.gateway.block = True
    task = asyncio.create_task(world.service.run(START, END, trigger="admin"))
    await world.gateway.entered.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [cancelled] = await world.history()
    assert (cancelled.status, cancelled.error) == (RunStatus.FAILED, "cancelled")
    world.gateway.block = False  # the lock went with the cancelled run: the range can run again
    assert (await world.service.run(START, END, trigger="admin")).status is RunStatus.SUCCEEDED


async def test_rerunning_an_unknown_run_is_not_found(world):
    with pytest.raises(NotFound):
        await world.service.rerun("rec_missing")


@pytest.mark.parametrize(
    ("start", "end"),
    [(END, START), (START, START), (START, START + timedelta(days=93)), (START.replace(tzinfo=None), END)],
)
async def test_an_empty_reversed_too_long_or_naive_range_is_refused_before_anything_runs(world, start, end):
    with pytest.raises(RangeInvalid):
        await world.service.run(start, end, trigger="cli")

    assert await world.history() == []


def test_the_scheduled_range_is_the_last_whole_ist_days_before_today_ist():
    # 20:30 UTC on the 26th is 02:00 IST on the 27th: the nightly firing.
    start, end = scheduled_range(datetime(2026, 11, 26, 20, 30, tzinfo=UTC), lookback_days=3)

    assert (start, end) == (datetime(2026, 11, 24, tzinfo=IST), datetime(2026, 11, 27, tzinfo=IST))
    assert end.astimezone(UTC) == datetime(2026, 11, 26, 18, 30, tzinfo=UTC)


def test_a_failure_keeps_our_errors_message_but_only_the_type_of_anything_else():
    assert failure_text(DependencyUnavailable("cashfree down")) == "dependency_unavailable: cashfree down"
    assert failure_text(RuntimeError("postgresql://app:s3cret@db/payments")) == (
        "unexpected error (RuntimeError)"
    )


async def test_a_payout_in_the_range_for_an_earlier_days_payment_is_no_orphan(world):
    # Paid on the 20th, settled on the 23rd: the run over the 23rd sees the payout, not the payment.
    payment_id = await world.paid(1)
    world.gateway.settle("ord_1", at=datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    world.clock.current = NOW

    run = await world.service.run(
        datetime(2026, 11, 23, tzinfo=IST), datetime(2026, 11, 24, tzinfo=IST), trigger="cli"
    )

    assert run.counts == {}
    assert await world.status(payment_id) is PaymentState.SETTLED


async def test_a_late_settlement_explains_the_missing_item_in_a_later_nights_run(world):
    # Paid on the 20th; the run over the 20th finds it missing. The payout comes on the 25th, past the
    # 72 h SLA: the run over the 25th, whose range holds none of the 20th, reads the payment for the
    # payout, resolves the missing item and reports the settlement as delayed.
    payment_id = await world.paid(1)
    world.clock.current = NOW
    first = await world.service.run(START, END, trigger="schedule")
    world.gateway.settle("ord_1", at=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))

    later = await world.service.run(
        datetime(2026, 11, 25, tzinfo=IST), datetime(2026, 11, 26, tzinfo=IST), trigger="schedule"
    )

    assert first.counts == {"missing_settlement": 1}
    assert later.counts == {"delayed_settlement": 1}
    [missing] = await world.items(first.run_id)
    assert (missing.resolution, missing.resolved_by_run) == (Resolution.RESOLVED, later.run_id)
    # The later run's items: what it found, and what it resolved.
    items = {(item.finding.kind.value, item.resolution) for item in await world.items(later.run_id)}
    assert items == {("delayed_settlement", Resolution.OPEN), ("missing_settlement", Resolution.RESOLVED)}
    assert missing.finding.payment_id == payment_id


@pytest.mark.parametrize(
    "text",
    ["0001-01-01", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "yesterday", "2026-13-01"],
)
def test_a_bound_that_is_no_time_in_utc_years_1_to_9999_is_refused(text):
    with pytest.raises(RangeInvalid):
        parse_bound(text)


def test_a_date_bound_is_midnight_in_india_and_a_time_without_offset_is_utc():
    assert parse_bound("2026-11-25") == datetime(2026, 11, 25, tzinfo=IST)
    assert parse_bound("2026-11-25T06:30") == datetime(2026, 11, 25, 6, 30, tzinfo=UTC)

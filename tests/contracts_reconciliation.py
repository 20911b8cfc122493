"""The settlement and reconciliation repository contract, run against the fakes and against PostgreSQL.

Every contract uses fresh ids, keys and a time range of its own far in the future, so it never depends
on what else the database holds.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from payments.domain.errors import Conflict, NotFound
from payments.domain.gateway import AttemptStatus, GatewaySettlement
from payments.domain.money import Money
from payments.domain.payment.states import PaymentState
from payments.domain.reconciliation.model import (
    Finding,
    MismatchKind,
    ReconciliationRun,
    Resolution,
    RunStatus,
)
from payments.domain.refund.model import Refund
from payments.domain.refund.states import RefundState
from payments.domain.unit_of_work import UnitOfWork
from tests.contracts_payments import attempt, new_payment
from tests.contracts_webhook_logs import delivery

UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def a_range(days: int = 1) -> tuple[datetime, datetime]:
    """A range no other test uses: a random minute some years ahead."""
    start = datetime(2040, 1, 1, tzinfo=UTC) + timedelta(minutes=random.randrange(10**7))
    return start, start + timedelta(days=days)


def a_run(start: datetime, end: datetime, **changes) -> ReconciliationRun:
    fields = {
        "run_id": f"run_{uuid.uuid4().hex[:12]}",
        "start": start,
        "end": end,
        "status": RunStatus.RUNNING,
        "trigger": "cli",
        "rule_version": "1",
        "started_at": NOW,
    }
    return ReconciliationRun(**{**fields, **changes})


def a_finding(key: str | None = None, **changes) -> Finding:
    fields = {
        "kind": MismatchKind.MISSING_SETTLEMENT,
        "key": key or f"missing_settlement:{uuid.uuid4().hex[:12]}",
        "payment_id": "pay_x",
        "ours": {"amount": "499.00", "status": "SUCCESS"},
        "theirs": None,
        "difference": {"settlement": "missing"},
    }
    return Finding(**{**fields, **changes})


def a_settlement(order_id: str, *, settlement_id: str | None = None, utr: str = "UTR42") -> GatewaySettlement:
    return GatewaySettlement(
        settlement_id=settlement_id or f"stl_{uuid.uuid4().hex[:10]}",
        order_id=order_id,
        attempt_id="9001",
        order_amount=Money.of("499.00", "INR"),
        service_charge=Money.of("9.98", "INR"),
        service_tax=Money.of("1.80", "INR"),
        settlement_amount=Money.of("487.22", "INR"),
        utr=utr,
        paid_at=NOW,
        settled_at=NOW + timedelta(days=1),
    )


async def started(uow_factory: UnitOfWorkFactory, run: ReconciliationRun) -> ReconciliationRun:
    async with uow_factory() as uow:
        await uow.reconciliation.start_run(run)
    return run


async def a_settlement_is_recorded_once_and_listed_for_its_payment(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment(status=PaymentState.SUCCESS)
    settlement = a_settlement(payment.order_id)
    async with uow_factory() as uow:
        await uow.payments.add(payment)
        assert await uow.settlements.record(settlement, payment.payment_id, now=NOW) is True
    async with uow_factory() as uow:
        assert await uow.settlements.record(settlement, payment.payment_id, now=NOW) is False
        [ours] = await uow.settlements.for_payment(payment.payment_id)

    assert (ours.settlement_id, ours.attempt_id, ours.utr) == (settlement.settlement_id, "9001", "UTR42")
    assert ours.amount == Money.of("487.22", "INR")
    assert ours.settled_at == settlement.settled_at


async def an_orphan_settlement_is_kept_and_learns_its_payment_later(uow_factory: UnitOfWorkFactory) -> None:
    payment = new_payment(status=PaymentState.SUCCESS)
    settlement = a_settlement(payment.order_id)
    async with uow_factory() as uow:
        assert await uow.settlements.record(settlement, None, now=NOW) is True
        await uow.payments.add(payment)
    async with uow_factory() as uow:
        assert await uow.settlements.for_payment(payment.payment_id) == []
        assert await uow.settlements.record(settlement, payment.payment_id, now=NOW) is False
    async with uow_factory() as uow:
        assert len(await uow.settlements.for_payment(payment.payment_id)) == 1


async def a_run_is_started_finished_and_listed_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    start, end = a_range()
    older = await started(uow_factory, a_run(start, end, started_at=datetime(2099, 1, 1, tzinfo=UTC)))
    newer = await started(uow_factory, a_run(start, end, started_at=datetime(2099, 1, 2, tzinfo=UTC)))
    async with uow_factory() as uow:
        with pytest.raises(Conflict):
            await uow.reconciliation.start_run(older)
    async with uow_factory() as uow:
        await uow.reconciliation.finish_run(
            older.run_id,
            status=RunStatus.SUCCEEDED,
            counts={"missing_settlement": 2},
            input_digest="d" * 64,
            finished_at=NOW,
            error=None,
        )
        with pytest.raises(NotFound):
            await uow.reconciliation.get_run("run_nobody")
        done = await uow.reconciliation.get_run(older.run_id)
        latest = await uow.reconciliation.runs(2)

    assert (done.status, dict(done.counts), done.input_digest) == (
        RunStatus.SUCCEEDED,
        {"missing_settlement": 2},
        "d" * 64,
    )
    assert (done.start, done.end, done.finished_at, done.trigger) == (start, end, NOW, "cli")
    assert [run.run_id for run in latest] == [newer.run_id, older.run_id]


async def a_discrepancy_found_again_stays_one_open_item(uow_factory: UnitOfWorkFactory) -> None:
    start, end = a_range()
    first, second = a_run(start, end), a_run(start, end)
    finding = a_finding()
    await started(uow_factory, first)
    await started(uow_factory, second)
    async with uow_factory() as uow:
        [opened] = await uow.reconciliation.record_findings(first, [finding], NOW)
    again = a_finding(finding.key, difference={"settlement": "still missing"})
    async with uow_factory() as uow:
        [seen] = await uow.reconciliation.record_findings(second, [again], NOW)
    async with uow_factory() as uow:
        [in_first] = await uow.reconciliation.items(first.run_id)
        [in_second] = await uow.reconciliation.items(second.run_id)

    assert seen.item_id == opened.item_id
    assert (seen.first_run_id, seen.run_id, seen.resolution) == (first.run_id, second.run_id, Resolution.OPEN)
    # Each run's report keeps the finding as that run saw it.
    assert in_first.finding == finding
    assert in_second.finding == again
    assert in_first.item_id == in_second.item_id


async def an_item_a_covering_run_no_longer_finds_is_resolved_not_deleted(
    uow_factory: UnitOfWorkFactory,
) -> None:
    start, end = a_range()
    first = await started(uow_factory, a_run(start, end))
    narrower = await started(uow_factory, a_run(start, start + timedelta(hours=1)))
    covering = await started(uow_factory, a_run(start - timedelta(days=1), end))
    gone, kept = a_finding(), a_finding()
    async with uow_factory() as uow:
        await uow.reconciliation.record_findings(first, [gone, kept], NOW)
    async with uow_factory() as uow:
        # A run that looked at part of the range cannot vouch for the rest.
        assert await uow.reconciliation.resolve_unseen(narrower, set(), NOW) == 0
    async with uow_factory() as uow:
        await uow.reconciliation.record_findings(covering, [kept], NOW)
        assert await uow.reconciliation.resolve_unseen(covering, {kept.key}, NOW + timedelta(hours=1)) == 1
    async with uow_factory() as uow:
        report = await uow.reconciliation.items(covering.run_id)
        first_report = await uow.reconciliation.items(first.run_id)

    by_key = {item.finding.key: item for item in report}
    assert by_key[gone.key].resolution is Resolution.RESOLVED
    assert (by_key[gone.key].resolved_by_run, by_key[gone.key].resolved_at) == (
        covering.run_id,
        NOW + timedelta(hours=1),
    )
    assert by_key[kept.key].resolution is Resolution.OPEN
    assert [item.finding.key for item in report] == sorted([gone.key, kept.key])
    assert {item.finding.key for item in first_report} == {gone.key, kept.key}


async def a_later_run_that_read_the_payment_resolves_what_it_judges_per_payment(
    uow_factory: UnitOfWorkFactory,
) -> None:
    start, end = a_range()
    first = await started(uow_factory, a_run(start, end))
    later = await started(uow_factory, a_run(end + timedelta(days=3), end + timedelta(days=4)))
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    missing = a_finding(payment_id=payment_id)
    refund = a_finding(
        f"inconsistent_refund:{uuid.uuid4().hex[:12]}",
        kind=MismatchKind.INCONSISTENT_REFUND,
        payment_id=payment_id,
    )
    async with uow_factory() as uow:
        await uow.reconciliation.record_findings(first, [missing, refund], NOW)
    async with uow_factory() as uow:
        # The later run's range holds none of the first's; it read the payment (for its payout).
        resolved = await uow.reconciliation.resolve_unseen(later, set(), NOW, examined={payment_id})
        items = {item.finding.key: item for item in await uow.reconciliation.items(first.run_id)}

    assert resolved == 1
    assert items[missing.key].resolution is Resolution.RESOLVED
    assert items[refund.key].resolution is Resolution.OPEN  # refunds are judged by the range only


async def a_resolved_discrepancy_that_comes_back_opens_a_new_item(uow_factory: UnitOfWorkFactory) -> None:
    start, end = a_range()
    runs = [await started(uow_factory, a_run(start, end)) for _ in range(3)]
    first, second, third = runs
    finding = a_finding()
    async with uow_factory() as uow:
        [old] = await uow.reconciliation.record_findings(first, [finding], NOW)
    async with uow_factory() as uow:
        assert await uow.reconciliation.resolve_unseen(second, set(), NOW) == 1
    async with uow_factory() as uow:
        [new] = await uow.reconciliation.record_findings(third, [finding], NOW)

    assert new.item_id != old.item_id
    assert new.first_run_id == third.run_id


async def open_items_are_counted_per_kind_and_resolved_ones_are_not(uow_factory: UnitOfWorkFactory) -> None:
    start, end = a_range()
    first = await started(uow_factory, a_run(start, end))
    covering = await started(uow_factory, a_run(start, end))
    async with uow_factory() as uow:
        before = await uow.reconciliation.open_counts()
    orphan = a_finding(f"orphan_payment:{uuid.uuid4().hex[:12]}", kind=MismatchKind.ORPHAN_PAYMENT)
    missing = [a_finding(), a_finding()]
    async with uow_factory() as uow:
        await uow.reconciliation.record_findings(first, [*missing, orphan], NOW)
    async with uow_factory() as uow:
        await uow.reconciliation.record_findings(covering, missing, NOW)
        await uow.reconciliation.resolve_unseen(covering, {f.key for f in missing}, NOW)
        after = await uow.reconciliation.open_counts()

    assert set(after) == set(MismatchKind)
    change = {kind: after[kind] - before[kind] for kind in MismatchKind}
    assert change == {kind: 2 if kind is MismatchKind.MISSING_SETTLEMENT else 0 for kind in MismatchKind}


async def our_records_are_the_ranges_payments_refunds_and_unprocessed_webhooks(
    uow_factory: UnitOfWorkFactory,
) -> None:
    start, end = a_range()
    inside = new_payment(status=PaymentState.SUCCESS, created_at=start + timedelta(minutes=5))
    outside = new_payment(status=PaymentState.SUCCESS, created_at=end)
    won = attempt(inside, AttemptStatus.SUCCESS, attempt_id=uuid.uuid4().hex[:10])
    lost = attempt(inside, AttemptStatus.FAILED)
    refund = Refund(
        refund_id=f"rf_{uuid.uuid4().hex[:10]}",
        payment_id=inside.payment_id,
        order_id=inside.order_id,
        amount=Money.of("100.00", "INR"),
        reason="asked",
        status=RefundState.PROCESSING,
        gateway_refund_id="cf_rf_1",
        created_at=NOW,
        updated_at=NOW,
    )
    stuck = delivery().model_copy(update={"received_at": start + timedelta(minutes=1)})
    too_recent = delivery().model_copy(update={"received_at": start + timedelta(hours=2)})
    async with uow_factory() as uow:
        for payment in (inside, outside):
            await uow.payments.add(payment)
        await uow.payments.record_attempt(inside.payment_id, lost, now=NOW)
        await uow.payments.record_attempt(inside.payment_id, won, now=NOW)
        await uow.settlements.record(a_settlement(inside.order_id), inside.payment_id, now=NOW)
        await uow.refunds.add(refund)
        stuck_log = await uow.webhooks.record(stuck)
        await uow.webhooks.record(too_recent)
    async with uow_factory() as uow:
        ours = await uow.reconciliation.our_records(start, end, webhooks_before=start + timedelta(hours=1))

    [payment] = ours.payments
    assert (payment.payment_id, payment.order_id, payment.amount, payment.status) == (
        inside.payment_id,
        inside.order_id,
        Money.of("499.00", "INR"),
        "SUCCESS",
    )
    assert payment.successful_attempt_ids == (won.attempt_id,)
    assert payment.succeeded_at == won.completed_at
    assert [s.utr for s in payment.settlements] == ["UTR42"]
    [our_refund] = ours.refunds
    assert (our_refund.refund_id, our_refund.status, our_refund.gateway_refund_id) == (
        refund.refund_id,
        "PROCESSING",
        "cf_rf_1",
    )
    assert our_refund.amount == Money.of("100.00", "INR")
    [webhook] = ours.webhooks
    assert (webhook.webhook_id, webhook.status, webhook.event_type) == (
        stuck_log.id,
        "RECEIVED",
        "PAYMENT_SUCCESS_WEBHOOK",
    )


async def a_range_lock_is_held_until_its_unit_of_work_ends(uow_factory: UnitOfWorkFactory) -> None:
    start, end = a_range()
    locked, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with uow_factory() as uow:
            assert await uow.reconciliation.lock_range(start, end) is True
            locked.set()
            await release.wait()

    task = asyncio.create_task(holder())
    await locked.wait()
    async with uow_factory() as uow:
        assert await uow.reconciliation.lock_range(start, end) is False
        assert await uow.reconciliation.lock_range(start, end + timedelta(days=1)) is True
    release.set()
    await task
    async with uow_factory() as uow:
        assert await uow.reconciliation.lock_range(start, end) is True


async def a_payment_created_before_the_range_and_paid_in_it_belongs_to_it(
    uow_factory: UnitOfWorkFactory,
) -> None:
    start, end = a_range()
    straddling = new_payment(status=PaymentState.SUCCESS, created_at=start - timedelta(seconds=1))
    paid = replace(attempt(straddling, AttemptStatus.SUCCESS), completed_at=start + timedelta(seconds=1))
    async with uow_factory() as uow:
        await uow.payments.add(straddling)
        await uow.payments.record_attempt(straddling.payment_id, paid, now=NOW)
    async with uow_factory() as uow:
        ours = await uow.reconciliation.our_records(start, end, webhooks_before=end)
        before = await uow.reconciliation.our_records(start - timedelta(days=1), start, webhooks_before=end)

    assert [p.payment_id for p in ours.payments] == [straddling.payment_id]
    assert ours.payments[0].succeeded_at == start + timedelta(seconds=1)
    # The day it was created still lists it; its time rules judge it by its success, in the next day.
    assert straddling.payment_id in [p.payment_id for p in before.payments]


async def payments_of_orders_the_gateway_names_are_read_without_their_refunds(
    uow_factory: UnitOfWorkFactory,
) -> None:
    start, end = a_range()
    earlier = new_payment(status=PaymentState.SUCCESS, created_at=start - timedelta(days=3))
    paid = replace(attempt(earlier, AttemptStatus.SUCCESS), completed_at=start - timedelta(days=3))
    refund = Refund(
        refund_id=f"rf_{uuid.uuid4().hex[:10]}",
        payment_id=earlier.payment_id,
        order_id=earlier.order_id,
        amount=Money.of("100.00", "INR"),
        reason="asked",
        status=RefundState.SUCCESS,
        gateway_refund_id="cf_rf_2",
        created_at=NOW,
        updated_at=NOW,
    )
    async with uow_factory() as uow:
        await uow.payments.add(earlier)
        await uow.payments.record_attempt(earlier.payment_id, paid, now=NOW)
        await uow.refunds.add(refund)
    async with uow_factory() as uow:
        plain = await uow.reconciliation.our_records(start, end, webhooks_before=end)
        named = await uow.reconciliation.our_records(
            start, end, webhooks_before=end, orders=[earlier.order_id, "ord_nobody_knows"]
        )

    assert earlier.payment_id not in [p.payment_id for p in plain.payments]
    assert [p.payment_id for p in named.payments] == [earlier.payment_id]
    assert named.refunds == ()  # an earlier day's refunds are that day's business


RECONCILIATION_CONTRACTS = [
    a_settlement_is_recorded_once_and_listed_for_its_payment,
    an_orphan_settlement_is_kept_and_learns_its_payment_later,
    a_run_is_started_finished_and_listed_newest_first,
    a_discrepancy_found_again_stays_one_open_item,
    an_item_a_covering_run_no_longer_finds_is_resolved_not_deleted,
    a_resolved_discrepancy_that_comes_back_opens_a_new_item,
    open_items_are_counted_per_kind_and_resolved_ones_are_not,
    our_records_are_the_ranges_payments_refunds_and_unprocessed_webhooks,
    a_payment_created_before_the_range_and_paid_in_it_belongs_to_it,
    a_later_run_that_read_the_payment_resolves_what_it_judges_per_payment,
    payments_of_orders_the_gateway_names_are_read_without_their_refunds,
    a_range_lock_is_held_until_its_unit_of_work_ends,
]

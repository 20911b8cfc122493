"""The settlement matcher over fakes: a paid-out settlement webhook settles its payments, once."""

from __future__ import annotations

import json
from datetime import timedelta

from payments.agents.reconciliation import match_settlements, reconciliation, search_window
from payments.domain.gateway import AttemptStatus
from payments.domain.payment.service import PaymentService
from payments.domain.payment.states import PaymentState
from payments.domain.webhook.notification import GatewayNotification, NotificationKind
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, RecordingPublisher
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore
from tests.unit.test_payment_service import create_command
from tests.unit.test_webhooks_agent import delivery, message, payment_webhook


def settlement_webhook(*, utr: str, kind: str = "SETTLEMENT_SUCCESS", settlement_id: int = 77) -> bytes:
    """A Cashfree settlement webhook: it names the payout (numeric id, UTR), not its orders."""
    settlement = {
        "settlement_id": settlement_id,
        "status": "SUCCESS" if kind == "SETTLEMENT_SUCCESS" else "PENDING",
        "utr": utr,
        "amount_settled": 496.64,
        "settlement_amount": 496.64,
        "payment_from": "2026-11-26T15:30:00+05:30",
        "payment_till": "2026-11-26T15:30:00+05:30",
        "settled_on": "2026-11-27T10:00:00+05:30",
    }
    body = {"data": {"settlement": settlement}, "event_time": "2026-11-27T10:00:00+05:30", "type": kind}
    return json.dumps(body).encode()


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.ctx = fake_context(store=self.store)
        self.service = PaymentService(
            unit_of_work=self.ctx.unit_of_work,
            gateway=self.ctx.gateway,
            locks=self.ctx.locks,
            clock=self.ctx.clock,
        )

    async def paid_payment(self, n: int = 1) -> str:
        payment = await self.service.create(create_command(n))
        self.ctx.gateway.attempt(payment.order_id, AttemptStatus.SUCCESS)
        return payment.order_id

    async def deliver(self, *messages: FakeMessage) -> RecordingPublisher:
        [spec] = reconciliation.agents
        return await run_until_settled(spec, self.ctx, *messages)

    async def status(self, payment_id: str = "pay_1") -> PaymentState:
        async with self.store.unit_of_work() as uow:
            return (await uow.payments.get(payment_id)).status

    def count(self, routing_key: str) -> int:
        return [e.routing_key for e in self.store.outbox_events.values()].count(routing_key)


async def test_a_paid_out_settlement_settles_every_payment_in_it_even_a_stuck_pending_one():
    world = World()
    first, second = await world.paid_payment(1), await world.paid_payment(2)
    at = NOW + timedelta(days=1)
    world.ctx.gateway.settle(first, settlement_id="cf_stl_1", utr="UTR77", at=at)
    world.ctx.gateway.settle(second, settlement_id="cf_stl_1", utr="UTR77", at=at)

    await world.deliver(message(delivery(settlement_webhook(utr="UTR77"))))

    assert await world.status("pay_1") is PaymentState.SETTLED
    assert await world.status("pay_2") is PaymentState.SETTLED
    assert world.count("payment.settled") == 2
    assert len(world.store.reconciliation_tables.settlements) == 2


async def test_a_redelivered_settlement_webhook_changes_nothing():
    world = World()
    order_id = await world.paid_payment()
    world.ctx.gateway.settle(order_id, settlement_id="cf_stl_1", utr="UTR77", at=NOW + timedelta(days=1))
    received = delivery(settlement_webhook(utr="UTR77"))

    await world.deliver(message(received, 1), message(received, 2))
    audit_rows = len(world.store.audit_rows)
    await world.deliver(message(received, 3))

    assert world.count("payment.settled") == 1
    assert len(world.store.audit_rows) == audit_rows
    assert len(world.store.inbox_claims) == 1


async def test_payment_webhooks_and_unpaid_settlements_are_ignored():
    world = World()
    order_id = await world.paid_payment()
    world.ctx.gateway.settle(order_id, utr="UTR77", at=NOW + timedelta(days=1))

    publisher = await world.deliver(
        message(delivery(payment_webhook(order_id, "SUCCESS")), 1),
        message(delivery(settlement_webhook(utr="UTR77", kind="SETTLEMENT_INITIATED")), 2),
    )

    assert await world.status() is PaymentState.PENDING
    assert publisher.published == []
    assert world.store.reconciliation_tables.settlements == {}


async def test_a_settlement_the_gateway_does_not_list_yet_is_retried():
    world = World()
    await world.paid_payment()

    publisher = await world.deliver(message(delivery(settlement_webhook(utr="UTR_UNKNOWN"))))

    [retry] = publisher.published
    assert ".retry." in retry.routing_key


def test_the_search_window_spans_the_webhooks_times_widened_by_a_day():
    notification = GatewayNotification(
        kind=NotificationKind.SETTLEMENT,
        event_type="SETTLEMENT_SUCCESS",
        dedup_key="k",
        raw=json.loads(settlement_webhook(utr="U")),
    )

    start, end = search_window(notification, now=NOW)

    assert start.isoformat() == "2026-11-25T15:30:00+05:30"
    assert end.isoformat() == "2026-11-28T10:00:00+05:30"
    assert match_settlements.__doc__

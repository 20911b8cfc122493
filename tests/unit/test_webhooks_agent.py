"""The webhook agent over fakes: log, confirm with the gateway, apply once; park what it cannot read."""

from __future__ import annotations

import base64
import json
import uuid

from prometheus_client import CollectorRegistry

from payments.agents.webhooks import process_webhooks, webhooks
from payments.domain.errors import DependencyUnavailable
from payments.domain.gateway import AttemptStatus
from payments.domain.money import Money
from payments.domain.payment.commands import Actor, CreatePayment
from payments.domain.payment.model import CustomerDetails
from payments.domain.payment.service import PaymentService
from payments.domain.payment.states import PaymentState
from payments.domain.webhook.intake import ReceivedWebhook, body_hash
from payments.domain.webhook.log import WebhookStatus
from payments.pipeline import metrics as metrics_module
from payments.pipeline.runtime import DEAD_LETTER_REASON_HEADER
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage, RecordingPublisher
from tests.fakes.context import NOW, fake_context
from tests.fakes.storage import InMemoryStore

ACTOR = Actor(actor_id="user-1", trace_id="a" * 32, request_id="r1")


def payment_webhook(order_id: str, status: str, *, cf_payment_id: int = 9001) -> bytes:
    """A Cashfree payment webhook (2025-01-01 shape) for 100.00 INR."""
    kind = {"SUCCESS": "PAYMENT_SUCCESS_WEBHOOK", "FAILED": "PAYMENT_FAILED_WEBHOOK"}[status]
    data = {
        "order": {"order_id": order_id, "order_amount": 100.0, "order_currency": "INR"},
        "payment": {
            "cf_payment_id": cf_payment_id,
            "payment_status": status,
            "payment_amount": 100.0,
            "payment_currency": "INR",
            "payment_group": "upi",
            "payment_method": {"upi": {"channel": "collect", "upi_id": "x@upi"}},
        },
    }
    return json.dumps({"data": data, "event_time": "2026-11-26T15:30:00+05:30", "type": kind}).encode()


def delivery(body: bytes, *, key: str | None = None, version: str = "2025-01-01") -> ReceivedWebhook:
    return ReceivedWebhook(
        provider="cashfree",
        dedup_key=key or f"cashfree:idem:{uuid.uuid4().hex}",
        event_type=json.loads(body)["type"],
        version=version,
        body_b64=base64.b64encode(body).decode(),
        body_hash=body_hash(body),
        headers={"x-webhook-version": version},
        received_at=NOW,
    )


def message(received: ReceivedWebhook, n: int = 1) -> FakeMessage:
    return FakeMessage(body=received.model_dump_json().encode(), message_id=received.dedup_key or f"m{n}")


class World:
    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.registry = CollectorRegistry()
        self.ctx = fake_context(store=self.store, metrics=metrics_module.create(self.registry))
        self.service = PaymentService(
            unit_of_work=self.ctx.unit_of_work,
            gateway=self.ctx.gateway,
            locks=self.ctx.locks,
            clock=self.ctx.clock,
        )

    async def payment(self) -> str:
        command = CreatePayment(
            payment_id="pay_1",
            order_id="ord_1",
            user_id="user-1",
            amount=Money.of("100.00", "INR"),
            customer=CustomerDetails(name="Asha", email=None, phone="9876543210"),
            actor=ACTOR,
        )
        return (await self.service.create(command)).order_id

    async def deliver(self, *messages: FakeMessage) -> RecordingPublisher:
        [spec] = webhooks.agents
        return await run_until_settled(spec, self.ctx, *messages)

    async def status(self) -> PaymentState:
        async with self.store.unit_of_work() as uow:
            return (await uow.payments.get("pay_1")).status

    def logs(self) -> list:
        return list(self.store.webhook_tables.rows.values())

    def routing_keys(self) -> list[str]:
        return [event.routing_key for event in self.store.outbox_events.values()]

    def timed(self, kind: str, outcome: str) -> tuple[float, float]:
        """(how many, total seconds) of processing times observed for ``kind`` and ``outcome``."""
        labels = {"kind": kind, "outcome": outcome}
        count = self.registry.get_sample_value("payments_webhook_processing_seconds_count", labels)
        total = self.registry.get_sample_value("payments_webhook_processing_seconds_sum", labels)
        return count or 0.0, total or 0.0


async def test_a_success_webhook_confirmed_by_the_gateway_pays_the_payment():
    world = World()
    order_id = await world.payment()
    world.ctx.gateway.attempt(order_id, AttemptStatus.SUCCESS)

    await world.deliver(message(delivery(payment_webhook(order_id, "SUCCESS"))))

    assert await world.status() is PaymentState.SUCCESS
    [log] = world.logs()
    assert (log.status, log.order_id, log.retry_count) == (WebhookStatus.SUCCESS, order_id, 0)
    assert log.payload["type"] == "PAYMENT_SUCCESS_WEBHOOK"
    assert "webhook.cashfree.processing" in world.routing_keys()
    assert world.routing_keys().count("payment.success") == 1
    # Received at NOW, finished at NOW on the fixed clock: timed once, in zero seconds.
    assert world.timed("payment", "success") == (1, 0.0)


async def test_a_success_webhook_the_gateway_does_not_confirm_changes_nothing():
    world = World()
    order_id = await world.payment()  # nobody paid: Cashfree says ACTIVE, no attempts

    await world.deliver(message(delivery(payment_webhook(order_id, "SUCCESS"))))

    assert await world.status() is PaymentState.PENDING
    assert world.logs()[0].status is WebhookStatus.SUCCESS  # handled; it just proved nothing


async def test_a_redelivered_webhook_is_applied_once():
    world = World()
    order_id = await world.payment()
    world.ctx.gateway.attempt(order_id, AttemptStatus.SUCCESS)
    received = delivery(payment_webhook(order_id, "SUCCESS"))

    await world.deliver(message(received, 1), message(received, 2))

    assert len(world.logs()) == 1
    assert world.routing_keys().count("webhook.cashfree.processing") == 1
    assert world.routing_keys().count("payment.success") == 1
    assert world.timed("payment", "success")[0] == 1, "the redelivery was timed again"


async def test_an_old_failure_arriving_after_the_success_never_moves_the_payment_back():
    world = World()
    order_id = await world.payment()
    world.ctx.gateway.attempt(order_id, AttemptStatus.FAILED)
    world.ctx.gateway.attempt(order_id, AttemptStatus.SUCCESS)
    success = delivery(payment_webhook(order_id, "SUCCESS", cf_payment_id=2))
    failure = delivery(payment_webhook(order_id, "FAILED", cf_payment_id=1))

    await world.deliver(message(success, 1), message(failure, 2))

    assert await world.status() is PaymentState.SUCCESS
    assert {log.status for log in world.logs()} == {WebhookStatus.SUCCESS}


async def test_a_webhook_for_an_order_we_do_not_know_is_logged_as_failed_and_acknowledged():
    world = World()

    publisher = await world.deliver(message(delivery(payment_webhook("ord_foreign", "SUCCESS"))))

    [log] = world.logs()
    assert (log.status, log.failure_reason) == (WebhookStatus.FAILED, "no payment has this order id")
    assert publisher.published == []
    assert {"webhook.cashfree.failed", "analytics.webhook.failure"} <= set(world.routing_keys())
    assert world.timed("payment", "failed")[0] == 1


async def test_an_unknown_payload_version_is_parked_in_the_dead_letter_queue():
    world = World()
    order_id = await world.payment()

    publisher = await world.deliver(
        message(delivery(payment_webhook(order_id, "SUCCESS"), version="2099-01-01"))
    )

    [parked] = publisher.published
    assert parked.routing_key == "webhooks.received.dlq"
    assert parked.headers[DEAD_LETTER_REASON_HEADER] == "unknown_webhook_version"
    assert world.logs()[0].status is WebhookStatus.FAILED
    assert "webhook.cashfree.deadletter" in world.routing_keys()


async def test_a_gateway_outage_sends_the_webhook_to_a_retry_tier_and_keeps_it_processing():
    world = World()
    order_id = await world.payment()
    world.ctx.gateway.fail_next = [DependencyUnavailable("gateway down")]

    publisher = await world.deliver(message(delivery(payment_webhook(order_id, "SUCCESS"))))

    [retried] = publisher.published
    assert retried.routing_key == "webhooks.received.retry.30s"
    assert world.logs()[0].status is WebhookStatus.PROCESSING
    assert "webhook.cashfree.retry" in world.routing_keys()


async def test_settlement_and_unknown_events_are_recorded_and_acknowledged():
    world = World()
    settlement = (
        b'{"data":{"settlement":{"settlement_id":77,"status":"SUCCESS","amount_settled":98.50,"utr":"U1"}},'
        b'"event_time":"2026-11-26T15:30:00+05:30","type":"SETTLEMENT_SUCCESS"}'
    )
    unknown = b'{"data":{"anything":1},"event_time":"2026-11-26T15:30:00+05:30","type":"SOMETHING_NEW"}'

    publisher = await world.deliver(message(delivery(settlement), 1), message(delivery(unknown), 2))

    assert [log.status for log in world.logs()] == [WebhookStatus.SUCCESS, WebhookStatus.SUCCESS]
    assert publisher.published == []
    assert (world.timed("settlement", "success")[0], world.timed("unknown", "success")[0]) == (1, 1)


def test_the_webhook_agent_consumes_the_received_queue():
    [spec] = webhooks.agents

    assert spec.queue.name == "webhooks.received"
    assert spec.function is process_webhooks

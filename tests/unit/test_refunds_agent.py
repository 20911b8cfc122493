"""The refunds agent, the refund poll and refund webhooks over fakes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from payments.agents.refunds import poll_unsettled_refunds, refunds
from payments.domain.errors import DependencyUnavailable
from payments.domain.gateway import AttemptStatus, GatewayRefundStatus
from payments.domain.money import Money
from payments.domain.payment.commands import VerifyPayment
from payments.domain.refund.commands import REFUND_COMMANDS, RequestRefund
from payments.domain.refund.states import RefundState
from payments.domain.webhook.log import WebhookStatus
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage
from tests.unit.test_payment_service import OWNER
from tests.unit.test_webhooks_agent import World, delivery, message


def refund_request(refund_id: str, amount: str) -> FakeMessage:
    command = RequestRefund(
        refund_id=refund_id,
        payment_id="pay_1",
        amount=Money.of(amount, "INR"),
        reason="customer asked",
        actor=OWNER,
    )
    return FakeMessage(
        body=REFUND_COMMANDS.dump_json(command),
        message_id=f"cmd-{refund_id}",
        reply_to="amq.rabbitmq.reply-to",
        correlation_id=f"corr-{refund_id}",
    )


async def paid(world: World) -> None:
    await world.payment()
    world.ctx.gateway.attempt("ord_1", AttemptStatus.SUCCESS)
    await world.service.verify(VerifyPayment(payment_id="pay_1", actor=OWNER))


async def deliver_refunds(world: World, *messages: FakeMessage):
    [spec] = refunds.agents
    return await run_until_settled(spec, world.ctx, *messages)


def answers(world: World) -> list[dict]:
    return [json.loads(body) for _, _, body in world.ctx.replies.sent]


async def test_a_refund_command_is_answered_with_the_refund():
    world = World()
    await paid(world)

    await deliver_refunds(world, refund_request("rf_1", "40.00"))

    assert answers(world)[-1] == {"result": {"refundId": "rf_1", "status": "PROCESSING"}, "error": None}


async def test_an_over_refund_is_answered_with_its_error_and_not_retried():
    world = World()
    await paid(world)

    publisher = await deliver_refunds(world, refund_request("rf_1", "100.01"))

    assert answers(world)[-1]["error"]["code"] == "refund_exceeds_balance"
    assert publisher.published == []


async def test_a_gateway_outage_sends_the_refund_command_to_a_retry_tier():
    world = World()
    await paid(world)
    world.ctx.gateway.fail_next = [DependencyUnavailable("gateway down")]

    publisher = await deliver_refunds(world, refund_request("rf_1", "40.00"))

    assert [p.routing_key for p in publisher.published] == ["refunds.commands.retry.30s"]


async def test_the_poll_settles_a_refund_whose_webhook_never_came():
    world = World()
    await paid(world)
    await deliver_refunds(world, refund_request("rf_1", "40.00"))
    world.ctx.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.SUCCESS)
    world.ctx.clock.current += timedelta(minutes=11)

    await poll_unsettled_refunds(world.ctx)

    async with world.store.unit_of_work() as uow:
        assert (await uow.refunds.get("rf_1")).status is RefundState.SUCCESS


async def test_a_refund_webhook_makes_the_engine_ask_the_gateway():
    world = World()
    await paid(world)
    await deliver_refunds(world, refund_request("rf_1", "40.00"))
    world.ctx.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.SUCCESS)
    body = json.dumps(
        {
            "data": {
                "refund": {
                    "refund_id": "rf_1",
                    "order_id": "ord_1",
                    "cf_refund_id": 5,
                    "refund_status": "SUCCESS",
                    "refund_amount": 40.0,
                    "refund_currency": "INR",
                    "entity": "Refund",
                }
            },
            "event_time": "2026-11-26T15:30:00+05:30",
            "type": "REFUND_STATUS_WEBHOOK",
        }
    ).encode()

    await world.deliver(message(delivery(body)))

    async with world.store.unit_of_work() as uow:
        assert (await uow.refunds.get("rf_1")).status is RefundState.SUCCESS
        assert (await uow.payments.get("pay_1")).status.value == "PARTIALLY_REFUNDED"
    assert world.logs()[-1].status is WebhookStatus.SUCCESS


async def test_a_settled_refund_is_timed_from_request_to_final_state():
    world = World()
    await paid(world)
    await deliver_refunds(world, refund_request("rf_1", "40.00"))
    world.ctx.gateway.finish_refund("ord_1", "rf_1", GatewayRefundStatus.SUCCESS)
    world.ctx.clock.current += timedelta(minutes=11)

    await poll_unsettled_refunds(world.ctx)

    latency = world.ctx.metrics.refund_latency.labels("success")
    assert latency._sum.get() == pytest.approx(11 * 60)

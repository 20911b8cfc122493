"""POST /api/v1/refunds/initiate: ownership first, a command to the agent, then the refund read back."""

from __future__ import annotations

import json

import pytest

from payments.domain.money import Money
from payments.domain.refund.ids import refund_id_for
from payments.domain.refund.states import RefundState
from tests.unit.web_payments._api import ADMIN, OWNER, STRANGER, create
from tests.unit.web_refunds._api import a_paid_payment, a_refund, initiate


async def test_a_partial_refund_answers_201_with_the_refund_the_gateway_is_processing(client, world):
    paid = await a_paid_payment(client, world)

    response, body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    assert response.status == 201
    refund_id = refund_id_for(OWNER, paid["paymentId"], "refund-1")
    assert body == {
        "refundId": refund_id,
        "paymentId": paid["paymentId"],
        "orderId": paid["orderId"],
        "amount": "100.00",
        "currency": "INR",
        "reason": "Customer asked",
        "status": "PROCESSING",
        "speed": "STANDARD",
        "gatewayRefundId": body["gatewayRefundId"],
        "statusDescription": None,
        "createdAt": "2026-11-26T10:00:00Z",
        "updatedAt": "2026-11-26T10:00:00Z",
        "processedAt": None,
    }
    assert body["gatewayRefundId"] is not None
    assert world.store.refund_tables.refunds[refund_id].status is RefundState.PROCESSING


async def test_the_command_carries_the_payments_currency_the_speed_the_key_and_who_asked(client, world):
    paid = await a_paid_payment(client, world)

    response, _ = await initiate(
        client, world, "refund-1", a_refund(paid["paymentId"], amount=12.5, speed="INSTANT")
    )

    assert response.status == 201
    [command] = world.bus.refund_commands()
    assert command.amount == Money.of("12.50", "INR")
    assert (command.speed.value, command.idempotency_key) == ("INSTANT", "refund-1")
    assert command.actor.actor_id == OWNER
    assert command.actor.user_agent == "pytest-client/1.0"
    assert command.actor.request_id == response.headers["X-Request-Id"]
    assert world.bus.wait_seconds[-1] == world.settings.web.command_reply_timeout_seconds


async def test_a_refund_larger_than_what_is_left_is_refused_with_refund_exceeds_balance(client, world):
    paid = await a_paid_payment(client, world)
    await initiate(client, world, "refund-1", a_refund(paid["paymentId"], amount="400.00"))

    response, body = await initiate(client, world, "refund-2", a_refund(paid["paymentId"], amount="100.00"))

    assert response.status == 400
    assert body["error"]["code"] == "refund_exceeds_balance"
    assert len(world.store.refund_tables.refunds) == 1


async def test_a_refund_of_an_unpaid_payment_is_refused_with_409(client, world):
    _, created = await create(client, world, "order-1")

    response, body = await initiate(client, world, "refund-1", a_refund(created["paymentId"]))

    assert response.status == 409
    assert body["error"]["code"] == "payment_not_refundable"
    assert world.store.refund_tables.refunds == {}


async def test_another_users_payment_is_404_and_nothing_is_sent(client, world):
    paid = await a_paid_payment(client, world)

    response, body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]), user=STRANGER)

    assert response.status == 404
    assert body["error"]["code"] == "not_found"
    assert world.bus.refund_commands() == []


async def test_an_admin_may_refund_anyones_payment(client, world):
    paid = await a_paid_payment(client, world)

    response, body = await initiate(
        client, world, "refund-1", a_refund(paid["paymentId"]), user=ADMIN, admin=True
    )

    assert response.status == 201
    assert body["refundId"] == refund_id_for(ADMIN, paid["paymentId"], "refund-1")


async def test_an_initiate_without_an_idempotency_key_is_refused(client, world):
    paid = await a_paid_payment(client, world)

    response, body = await initiate(client, world, None, a_refund(paid["paymentId"]))

    assert response.status == 400
    assert body["error"]["code"] == "idempotency_key_required"
    assert world.bus.refund_commands() == []


async def test_the_same_key_and_body_again_replays_the_answer_and_makes_one_refund(client, world):
    paid = await a_paid_payment(client, world)
    first, first_body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))
    world.tick()

    second, second_body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    assert (first.status, second.status) == (201, 201)
    assert second_body == first_body
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(world.bus.refund_commands()) == 1
    assert len(world.store.refund_tables.refunds) == 1


async def test_the_same_key_with_another_amount_is_refused_with_422(client, world):
    paid = await a_paid_payment(client, world)
    await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    response, body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"], amount="5.00"))

    assert response.status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert len(world.bus.refund_commands()) == 1


async def test_a_late_reply_answers_202_with_where_to_look_and_frees_the_key(client, world):
    paid = await a_paid_payment(client, world)
    world.bus.mode = "silent"

    late, body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))
    world.bus.mode = None
    retried, retried_body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    refund_id = refund_id_for(OWNER, paid["paymentId"], "refund-1")
    assert (late.status, retried.status) == (202, 201)
    assert body == {
        "refundId": refund_id,
        "paymentId": paid["paymentId"],
        "status": "INITIATED",
        "statusUrl": f"/api/v1/refunds/{refund_id}",
    }
    assert late.headers["Location"] == f"/api/v1/refunds/{refund_id}"
    assert retried_body["refundId"] == refund_id


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"amount": "0"}, "amount_invalid"),
        ({"amount": "-5.00"}, "amount_invalid"),
        ({"amount": "1e2"}, "amount_invalid"),
        ({"amount": True}, "amount_invalid"),
        ({"amount": "10.005"}, "amount_precision"),
        ({"reason": "no"}, "validation_failed"),
        ({"reason": "x" * 101}, "validation_failed"),
        ({"reason": "refund\u0000now"}, "validation_failed"),
        ({"speed": "WARP"}, "validation_failed"),
        ({"currency": "INR"}, "validation_failed"),
    ],
    ids=[
        "zero",
        "negative",
        "exponent",
        "boolean",
        "too-precise",
        "short",
        "long",
        "control",
        "speed",
        "extra",
    ],
)
async def test_a_bad_amount_or_reason_is_400_with_its_code_and_nothing_is_sent(
    client, world, overrides, code
):
    paid = await a_paid_payment(client, world)

    response, body = await initiate(client, world, "refund-1", a_refund(paid["paymentId"], **overrides))

    assert response.status == 400
    assert body["error"]["code"] == code
    assert world.bus.refund_commands() == []


async def test_an_amount_written_as_a_json_number_is_read_exactly(client, world):
    paid = await a_paid_payment(client, world)
    raw = json.dumps(a_refund(paid["paymentId"], amount=0)).replace('"amount": 0', '"amount": 0.1')
    headers = {**world.headers(key="refund-1"), "Content-Type": "application/json"}

    response = await client.post("/api/v1/refunds/initiate", data=raw.encode(), headers=headers)

    assert response.status == 201
    assert (await response.json())["amount"] == "0.10"

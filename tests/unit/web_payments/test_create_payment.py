"""POST /api/v1/payments/create: a command to the agent, then the payment read back."""

from __future__ import annotations

import json
from decimal import Decimal

from payments.domain.payment.commands import CreatePayment
from payments.domain.payment.ids import order_id_for, payment_id_for
from payments.domain.payment.states import PaymentState
from tests.unit.web_payments._api import OWNER, a_body, create, create_raw


async def test_a_create_answers_201_with_a_pending_payment_and_its_checkout_session(client, world):
    response, body = await create(client, world, "order-1")

    assert response.status == 201
    payment_id = payment_id_for(OWNER, "order-1")
    assert body["paymentId"] == payment_id
    assert body["orderId"] == order_id_for(payment_id)
    assert body["userId"] == OWNER
    assert body["status"] == "PENDING"
    assert body["amount"] == "499.00"
    assert body["currency"] == "INR"
    assert body["gateway"] == "cashfree"
    assert body["paymentSessionId"] == f"session_{body['orderId']}"
    assert body["gatewayOrderId"] is not None
    assert (body["isReconciled"], body["retryCount"]) == (False, 0)
    assert body["createdAt"] == "2026-11-26T10:00:00Z"
    assert world.payments()[payment_id].status is PaymentState.PENDING


async def test_the_payment_json_has_exactly_the_documented_fields_and_no_customer_details(client, world):
    response, body = await create(client, world, "order-1")

    assert set(body) == {
        "paymentId",
        "orderId",
        "userId",
        "status",
        "amount",
        "currency",
        "gateway",
        "gatewayOrderId",
        "gatewayPaymentId",
        "paymentSessionId",
        "paymentMethod",
        "failureReason",
        "settlementStatus",
        "isReconciled",
        "retryCount",
        "createdAt",
        "updatedAt",
    }
    text = await response.text()
    assert "asha" not in text.lower()
    assert "9876543210" not in text


async def test_the_command_carries_the_derived_ids_the_webhook_url_and_who_asked(client, world):
    response, _ = await create(client, world, "order-1")

    [command] = world.bus.commands(CreatePayment)
    assert command.payment_id == payment_id_for(OWNER, "order-1")
    assert command.notify_url == "http://127.0.0.1:8080/api/v1/webhooks/cashfree"
    assert command.idempotency_key == "order-1"
    assert command.customer.phone == "9876543210"
    assert command.actor.actor_id == OWNER
    assert command.actor.user_agent == "pytest-client/1.0"
    assert command.actor.ip_address == "127.0.0.1"
    assert command.actor.request_id == response.headers["X-Request-Id"]
    assert not command.actor.is_admin
    assert world.bus.wait_seconds == [world.settings.web.command_reply_timeout_seconds]


async def test_an_amount_given_as_a_json_number_is_read_exactly(client, world):
    raw = json.dumps(a_body(amount=0)).replace('"amount": 0', '"amount": 1234.5').encode()

    response, body = await create_raw(client, world, "order-1", raw)

    assert response.status == 201
    assert body["amount"] == "1234.50"
    [command] = world.bus.commands(CreatePayment)
    assert command.amount.amount == Decimal("1234.50")


async def test_a_late_reply_answers_202_with_where_to_find_the_payment(client, world):
    world.bus.mode = "silent"

    response, body = await create(client, world, "order-1")

    payment_id = payment_id_for(OWNER, "order-1")
    assert response.status == 202
    assert response.headers["Location"] == f"/api/v1/payments/{payment_id}"
    assert body == {
        "paymentId": payment_id,
        "orderId": order_id_for(payment_id),
        "status": "PROCESSING",
        "statusUrl": f"/api/v1/payments/{payment_id}",
    }


async def test_after_a_202_the_key_is_free_so_a_retry_sends_the_command_again(client, world):
    world.bus.mode = "silent"
    first, _ = await create(client, world, "order-1")
    world.bus.mode = None

    second, body = await create(client, world, "order-1")

    assert (first.status, second.status) == (202, 201)
    assert "Idempotent-Replayed" not in second.headers
    assert len(world.bus.commands(CreatePayment)) == 2
    assert list(world.payments()) == [body["paymentId"]]


async def test_a_broker_outage_answers_503_and_leaves_nothing_behind(client, world):
    world.bus.mode = "broken"

    response, body = await create(client, world, "order-1")

    assert response.status == 503
    assert body["error"]["code"] == "dependency_unavailable"
    assert world.payments() == {}
    assert len(world.idempotency) == 0


async def test_after_a_503_a_retry_with_the_same_key_creates_the_payment(client, world):
    world.bus.mode = "broken"
    await create(client, world, "order-1")
    world.bus.mode = None

    response, body = await create(client, world, "order-1")

    assert response.status == 201
    assert body["status"] == "PENDING"


async def test_a_refusal_from_the_agent_is_answered_with_its_code_and_status(client, world):
    world.gateway.reject_phone = "9999999999"
    customer = {"name": "Asha Rao", "email": "asha@example.com", "phone": "9999999999"}

    response, body = await create(client, world, "order-1", a_body(customer=customer))

    assert response.status == 400
    assert body["error"]["code"] == "gateway_rejected"
    assert body["error"]["requestId"] == response.headers["X-Request-Id"]


async def test_a_refusal_is_final_so_the_same_request_replays_it_without_a_second_command(client, world):
    world.gateway.reject_phone = "9999999999"
    customer = {"name": "Asha Rao", "email": "asha@example.com", "phone": "9999999999"}
    first, first_body = await create(client, world, "order-1", a_body(customer=customer))

    second, second_body = await create(client, world, "order-1", a_body(customer=customer))

    assert (first.status, second.status) == (400, 400)
    assert second_body == first_body
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(world.bus.commands(CreatePayment)) == 1

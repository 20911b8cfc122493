"""GET a payment, its status, and POST verify: owners and admins see a payment, others get 404."""

from __future__ import annotations

from payments.domain.gateway import AttemptStatus
from payments.domain.payment.commands import VerifyPayment
from tests.unit.web_payments._api import ADMIN, OWNER, STRANGER, create, verify


async def a_payment(client, world, key: str = "order-1") -> dict:
    response, body = await create(client, world, key)
    assert response.status == 201
    return body


async def test_the_owner_reads_the_payment_as_it_was_created(client, world):
    created = await a_payment(client, world)

    response = await client.get(f"/api/v1/payments/{created['paymentId']}", headers=world.headers(OWNER))

    assert response.status == 200
    assert await response.json() == created


async def test_the_status_view_is_found_by_order_id(client, world):
    created = await a_payment(client, world)

    response = await client.get(f"/api/v1/payments/status/{created['orderId']}", headers=world.headers(OWNER))

    assert response.status == 200
    assert await response.json() == {
        "paymentId": created["paymentId"],
        "orderId": created["orderId"],
        "status": "PENDING",
        "amount": "499.00",
        "currency": "INR",
        "updatedAt": created["updatedAt"],
    }


async def test_another_users_payment_does_not_exist_for_them(client, world):
    created = await a_payment(client, world)
    stranger = world.headers(STRANGER)

    by_id = await client.get(f"/api/v1/payments/{created['paymentId']}", headers=stranger)
    by_order = await client.get(f"/api/v1/payments/status/{created['orderId']}", headers=stranger)
    verified, body = await verify(client, world, "v-1", {"paymentId": created["paymentId"]}, user=STRANGER)

    assert (by_id.status, by_order.status, verified.status) == (404, 404, 404)
    assert body["error"]["code"] == "not_found"
    assert world.bus.commands(VerifyPayment) == []


async def test_an_admin_sees_and_verifies_anyones_payment(client, world):
    created = await a_payment(client, world)
    admin = world.headers(ADMIN, admin=True)

    by_id = await client.get(f"/api/v1/payments/{created['paymentId']}", headers=admin)
    by_order = await client.get(f"/api/v1/payments/status/{created['orderId']}", headers=admin)
    verified, _ = await verify(client, world, "v-1", {"orderId": created["orderId"]}, user=ADMIN, admin=True)

    assert (by_id.status, by_order.status, verified.status) == (200, 200, 200)
    [command] = world.bus.commands(VerifyPayment)
    assert (command.actor.actor_id, command.actor.is_admin) == (ADMIN, True)


async def test_an_unknown_payment_is_404_and_an_id_that_cannot_be_ours_never_reaches_a_read(client, world):
    unknown = await client.get("/api/v1/payments/pay_doesnotexist", headers=world.headers())
    impossible = await client.get("/api/v1/payments/" + "x" * 65, headers=world.headers())

    assert (unknown.status, impossible.status) == (404, 404)
    assert (await unknown.json())["error"]["code"] == "not_found"


async def test_verify_after_a_successful_attempt_answers_200_with_the_payment_succeeded(client, world):
    created = await a_payment(client, world)
    world.gateway.attempt(created["orderId"], AttemptStatus.SUCCESS)

    response, body = await verify(client, world, "v-1", {"paymentId": created["paymentId"]})

    assert response.status == 200
    assert body["status"] == "SUCCESS"
    assert body["paymentMethod"] == "upi"
    assert body["gatewayPaymentId"] is not None
    [command] = world.bus.commands(VerifyPayment)
    assert command.payment_id == created["paymentId"]


async def test_verify_by_order_id_finds_the_payment(client, world):
    created = await a_payment(client, world)
    world.gateway.attempt(created["orderId"], AttemptStatus.FAILED)

    response, body = await verify(client, world, "v-1", {"orderId": created["orderId"]})

    assert response.status == 200
    assert (body["paymentId"], body["status"]) == (created["paymentId"], "FAILED")


async def test_a_verify_whose_reply_is_late_answers_202_and_frees_its_key(client, world):
    created = await a_payment(client, world)
    world.bus.mode = "silent"

    late, body = await verify(client, world, "v-1", {"paymentId": created["paymentId"]})
    world.bus.mode = None
    retried, _ = await verify(client, world, "v-1", {"paymentId": created["paymentId"]})

    assert (late.status, retried.status) == (202, 200)
    assert late.headers["Location"] == f"/api/v1/payments/{created['paymentId']}"
    assert body["statusUrl"] == f"/api/v1/payments/{created['paymentId']}"
    assert len(world.bus.commands(VerifyPayment)) == 2


async def test_routes_are_measured_by_template_and_fixed_paths_are_not_taken_for_ids(client, world):
    created = await a_payment(client, world)
    await client.get(f"/api/v1/payments/{created['paymentId']}", headers=world.headers())
    history = await client.get("/api/v1/payments/history", headers=world.headers())

    templates = {resource.canonical for resource in client.app.router.resources()}
    metrics = (await (await client.get("/metrics")).text()).splitlines()

    assert history.status == 200
    assert "payments" in await history.json()
    assert {
        "/api/v1/payments/{paymentId}",
        "/api/v1/payments/status/{orderId}",
        "/api/v1/payments/history",
    } <= templates
    assert any('route="/api/v1/payments/{paymentId}",status="200"' in line for line in metrics)
    assert not any(created["paymentId"] in line for line in metrics)

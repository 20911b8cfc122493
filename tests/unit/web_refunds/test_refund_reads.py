"""GET a refund and a payment's refunds with its balances: owners and admins see them, others get 404."""

from __future__ import annotations

from payments.domain.gateway import GatewayRefundStatus
from tests.unit.web_payments._api import ADMIN, OWNER, STRANGER, create
from tests.unit.web_refunds._api import a_paid_payment, a_refund, initiate


async def test_the_owner_reads_a_refund_as_it_was_answered(client, world):
    paid = await a_paid_payment(client, world)
    _, created = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    response = await client.get(f"/api/v1/refunds/{created['refundId']}", headers=world.headers(OWNER))

    assert response.status == 200
    assert await response.json() == created


async def test_a_refund_shows_the_gateways_final_word_once_the_service_has_applied_it(client, world):
    paid = await a_paid_payment(client, world)
    _, created = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))
    world.tick()
    world.gateway.finish_refund(paid["orderId"], created["refundId"], GatewayRefundStatus.SUCCESS)
    await world.refund_service.sync(created["refundId"], world.bus.refund_commands()[0].actor)

    response = await client.get(f"/api/v1/refunds/{created['refundId']}", headers=world.headers(OWNER))

    body = await response.json()
    assert (body["status"], body["processedAt"]) == ("SUCCESS", "2026-11-26T10:01:00Z")


async def test_another_users_refund_does_not_exist_for_them_but_an_admin_sees_it(client, world):
    paid = await a_paid_payment(client, world)
    _, created = await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))
    url = f"/api/v1/refunds/{created['refundId']}"

    stranger = await client.get(url, headers=world.headers(STRANGER))
    admin = await client.get(url, headers=world.headers(ADMIN, admin=True))
    unknown = await client.get("/api/v1/refunds/rf_doesnotexist", headers=world.headers(OWNER))

    assert (stranger.status, admin.status, unknown.status) == (404, 200, 404)
    assert (await stranger.json())["error"]["code"] == "not_found"


async def test_a_payments_refunds_come_oldest_first_with_what_went_back_and_what_is_left(client, world):
    paid = await a_paid_payment(client, world)
    _, first = await initiate(client, world, "refund-1", a_refund(paid["paymentId"], amount="100.00"))
    world.tick()
    _, second = await initiate(client, world, "refund-2", a_refund(paid["paymentId"], amount="50.50"))
    world.gateway.finish_refund(paid["orderId"], first["refundId"], GatewayRefundStatus.SUCCESS)
    await world.refund_service.sync(first["refundId"], world.bus.refund_commands()[0].actor)

    response = await client.get(f"/api/v1/refunds/payment/{paid['paymentId']}", headers=world.headers(OWNER))

    body = await response.json()
    assert response.status == 200
    assert body["paymentId"] == paid["paymentId"]
    assert [r["refundId"] for r in body["refunds"]] == [first["refundId"], second["refundId"]]
    assert [r["status"] for r in body["refunds"]] == ["SUCCESS", "PROCESSING"]
    # 499.00 captured: 100.00 went back, 50.50 is on its way, so 348.50 may still be refunded.
    assert (body["refundedAmount"], body["refundableAmount"]) == ("100.00", "348.50")


async def test_a_failed_refund_gives_its_amount_back_to_the_refundable_balance(client, world):
    paid = await a_paid_payment(client, world)
    _, created = await initiate(client, world, "refund-1", a_refund(paid["paymentId"], amount="400.00"))
    world.gateway.finish_refund(paid["orderId"], created["refundId"], GatewayRefundStatus.CANCELLED)
    await world.refund_service.sync(created["refundId"], world.bus.refund_commands()[0].actor)

    response = await client.get(f"/api/v1/refunds/payment/{paid['paymentId']}", headers=world.headers(OWNER))

    body = await response.json()
    assert [r["status"] for r in body["refunds"]] == ["FAILED"]
    assert (body["refundedAmount"], body["refundableAmount"]) == ("0.00", "499.00")


async def test_an_unpaid_payment_has_nothing_refundable(client, world):
    _, created = await create(client, world, "order-1")

    response = await client.get(
        f"/api/v1/refunds/payment/{created['paymentId']}", headers=world.headers(OWNER)
    )

    assert await response.json() == {
        "paymentId": created["paymentId"],
        "refunds": [],
        "refundedAmount": "0.00",
        "refundableAmount": "0.00",
    }


async def test_another_users_payment_refunds_are_404(client, world):
    paid = await a_paid_payment(client, world)
    await initiate(client, world, "refund-1", a_refund(paid["paymentId"]))

    response = await client.get(
        f"/api/v1/refunds/payment/{paid['paymentId']}", headers=world.headers(STRANGER)
    )

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"

"""Small steps the Cashfree sandbox tests share: open an order, pay it, wait for the outcome."""

from __future__ import annotations

import uuid
from decimal import Decimal

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import (
    CreateOrderRequest,
    CustomerDetails,
    OrderEntity,
    OrderPayRequest,
    PayOrderEntity,
    Upi,
    UpiPaymentMethod,
)
from tests.waiting import eventually

SUCCEEDS = "testsuccess@gocash"
FAILS = "testfailure@gocash"


def new_order_id() -> str:
    return f"order_{uuid.uuid4().hex[:16]}"


def order_request(order_id: str | None = None, amount: str = "100.50") -> CreateOrderRequest:
    return CreateOrderRequest(
        order_id=order_id or new_order_id(),
        order_amount=Decimal(amount),
        order_currency="INR",
        customer_details=CustomerDetails(customer_id="cust_42", customer_phone="9876543210"),
    )


async def pay(client: CashfreeClient, order: OrderEntity, upi_id: str) -> PayOrderEntity:
    assert order.payment_session_id is not None
    request = OrderPayRequest(
        payment_session_id=order.payment_session_id,
        payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id=upi_id)),
    )
    return await client.pay_order(request, attempt_key=f"{order.order_id}:{upi_id}")


async def paid_order(client: CashfreeClient, amount: str = "100.50") -> OrderEntity:
    """A new order, paid with the sandbox's succeeding UPI id, once Cashfree reports it PAID."""
    order = await client.create_order(order_request(amount=amount))
    await pay(client, order, SUCCEEDS)
    assert order.order_id is not None
    return await order_in_status(client, order.order_id, "PAID")


async def order_in_status(client: CashfreeClient, order_id: str, status: str) -> OrderEntity:
    async def probe() -> OrderEntity | None:
        order = await client.get_order(order_id)
        return order if order.order_status == status else None

    return await eventually(probe, what=f"order {order_id} to be {status}")

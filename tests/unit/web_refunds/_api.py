"""The refund API over the real app factory, the real services and behavioural fakes.

``RefundWorld`` is the payment API's ``World`` with a ``RefundService`` over the same in-memory store,
gateway and clock, and both route setups on one app. ``RefundBus`` stands in for RabbitMQ and both
agents: ``command.refund.initiate`` is decoded as the refunds agent decodes it and run through the real
refund service; payment commands go to the payment bus as before.
"""

from __future__ import annotations

from typing import Any

from payments.domain.errors import PaymentsError, Retry
from payments.domain.gateway import AttemptStatus
from payments.domain.payment.service import PaymentService
from payments.domain.refund.commands import REFUND_COMMANDS, RequestRefund
from payments.domain.refund.service import RefundService
from payments.pipeline.error_status import status_for
from payments.pipeline.settings import Settings
from payments.web.commands import CommandReply
from payments.web.refunds import INITIATE_COMMAND, refund_routes
from tests.fakes.gateway import InMemoryPaymentLocks
from tests.unit.web_payments._api import OWNER, ServiceBus, World, create, verify


class RefundBus(ServiceBus):
    """The payment bus, plus the refunds agent as the real refund service."""

    def __init__(self, payments: PaymentService, refunds: RefundService) -> None:
        super().__init__(payments)
        self.refunds = refunds

    async def request(
        self, routing_key: str, body: bytes, *, message_id: str, wait_seconds: float
    ) -> CommandReply | None:
        if routing_key != INITIATE_COMMAND:
            return await super().request(routing_key, body, message_id=message_id, wait_seconds=wait_seconds)
        command = REFUND_COMMANDS.validate_json(body)
        self.sent.append((routing_key, command))
        self.wait_seconds.append(wait_seconds)
        if self.mode == "silent":
            return None
        try:
            refund = await self.refunds.request(command)
        except Retry:
            return None
        except PaymentsError as refused:
            return CommandReply(
                result={},
                error={"code": refused.code, "message": refused.message, "status": status_for(refused)},
            )
        return CommandReply(result={"refundId": refund.refund_id, "status": refund.status.value})

    def refund_commands(self) -> list[RequestRefund]:
        return self.commands(RequestRefund)


class RefundWorld(World):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.refund_service = RefundService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            locks=InMemoryPaymentLocks(),
            clock=self.clock,
        )
        self.bus = RefundBus(self.service, self.refund_service)

    def app(self, *extra_setups: Any) -> Any:
        routes = refund_routes(
            service=self.refund_service,
            payments=self.service,
            commands=self.bus,
            idempotency=self.idempotency,
            unit_of_work=self.store.unit_of_work,
        )
        return super().app(routes, *extra_setups)


def a_refund(payment_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"paymentId": payment_id, "amount": "100.00", "reason": "Customer asked"}
    return body | overrides


async def a_paid_payment(client, world: RefundWorld, key: str = "order-1") -> dict[str, Any]:
    """A payment of 499.00 INR the customer paid, verified through the API: SUCCESS."""
    response, created = await create(client, world, key)
    assert response.status == 201
    world.gateway.attempt(created["orderId"], AttemptStatus.SUCCESS)
    response, verified = await verify(client, world, f"verify-{key}", {"paymentId": created["paymentId"]})
    assert (response.status, verified["status"]) == (200, "SUCCESS")
    return verified


async def initiate(
    client, world: RefundWorld, key: str | None, body: Any, *, user: str = OWNER, admin: bool = False
):
    """POST /refunds/initiate and return (response, JSON body)."""
    response = await client.post(
        "/api/v1/refunds/initiate", json=body, headers=world.headers(user, admin=admin, key=key)
    )
    return response, await response.json()

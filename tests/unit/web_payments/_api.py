"""The payment API over the real app factory, the real PaymentService and behavioural fakes.

``ServiceBus`` stands in for RabbitMQ and the payments agent: it decodes each command exactly as the
agent does and runs it through the real service, answering as the agent answers. It can also stay
silent (the reply timed out), be broken (the broker refused the command), or hold every command at a
gate until the test opens it (a request in flight).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from payments.domain.errors import DependencyUnavailable, PaymentsError, Retry
from payments.domain.payment.commands import PAYMENT_COMMANDS, CreatePayment, VerifyPayment
from payments.domain.payment.service import PaymentService
from payments.pipeline import metrics
from payments.pipeline.error_status import status_for
from payments.pipeline.settings import Settings
from payments.web.app import WebDependencies, create_app
from payments.web.auth import mint_token
from payments.web.commands import CommandReply
from payments.web.payments import CREATE_COMMAND, VERIFY_COMMAND, payment_routes
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.idempotency import InMemoryIdempotencyStore
from tests.fakes.storage import InMemoryStore
from tests.unit._web_support import healthy_probes

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
OWNER = "user-1"
STRANGER = "user-2"
ADMIN = "admin-1"

Sent = tuple[str, CreatePayment | VerifyPayment]


class ServiceBus:
    """A ``CommandBus`` whose agent is the real payment service over in-memory storage."""

    def __init__(self, service: PaymentService) -> None:
        self.service = service
        self.sent: list[Sent] = []
        self.wait_seconds: list[float] = []
        #: None: answer; "silent": never answer (the reply timed out); "broken": refuse to queue.
        self.mode: str | None = None
        #: When set, every command waits here (in flight) until the test opens it.
        self.gate: asyncio.Event | None = None

    async def request(
        self, routing_key: str, body: bytes, *, message_id: str, wait_seconds: float
    ) -> CommandReply | None:
        if self.mode == "broken":
            raise DependencyUnavailable("the broker refused the command")
        command = PAYMENT_COMMANDS.validate_json(body)
        expected = CREATE_COMMAND if isinstance(command, CreatePayment) else VERIFY_COMMAND
        assert routing_key == expected, f"{type(command).__name__} sent as {routing_key}"
        self.sent.append((routing_key, command))
        self.wait_seconds.append(wait_seconds)
        if self.gate is not None:
            await self.gate.wait()
        if self.mode == "silent":
            return None
        return await self._run(command)

    async def _run(self, command: CreatePayment | VerifyPayment) -> CommandReply | None:
        try:
            if isinstance(command, CreatePayment):
                payment = await self.service.create(command)
            else:
                payment = await self.service.verify(command)
        except Retry:
            return None  # the agent leaves it to the retry tiers; the caller has given up waiting
        except PaymentsError as refused:
            return CommandReply(
                result={},
                error={"code": refused.code, "message": refused.message, "status": status_for(refused)},
            )
        return CommandReply(result={"paymentId": payment.payment_id, "status": payment.status.value})

    def commands(self, kind: type[Any] = object) -> list[Any]:
        return [command for _, command in self.sent if isinstance(command, kind)]


class World:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = InMemoryStore()
        self.clock = FixedClock(NOW)
        self.gateway = InMemoryGateway(now=NOW)
        self.service = PaymentService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            locks=InMemoryPaymentLocks(),
            clock=self.clock,
        )
        self.bus = ServiceBus(self.service)
        self.idempotency = InMemoryIdempotencyStore()

    def app(self, *extra_setups: Any) -> Any:
        registry = CollectorRegistry()
        deps = WebDependencies(
            settings=self.settings,
            metrics=metrics.create(registry),
            registry=registry,
            probes=healthy_probes(),
        )
        routes = payment_routes(
            service=self.service,
            commands=self.bus,
            idempotency=self.idempotency,
            unit_of_work=self.store.unit_of_work,
        )
        return create_app(deps, extra_setups=[routes, *extra_setups])

    def headers(self, user: str = OWNER, *, admin: bool = False, key: str | None = None) -> dict[str, str]:
        token = mint_token(self.settings.security, user_id=user, admin=admin, now=datetime.now(UTC))
        headers = {"Authorization": f"Bearer {token}", "User-Agent": "pytest-client/1.0"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def payments(self) -> dict[str, Any]:
        return self.store.payment_tables.payments

    def tick(self, minutes: int = 1) -> None:
        self.clock.current += timedelta(minutes=minutes)


def a_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": "499.00",
        "currency": "INR",
        "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
        "description": "CommDesk Pro",
    }
    return body | overrides


async def create(client, world: World, key: str, body: Any = None, *, user: str = OWNER, **headers: str):
    """POST /create and return (response, JSON body)."""
    response = await client.post(
        "/api/v1/payments/create",
        json=a_body() if body is None else body,
        headers={**world.headers(user, key=key), **headers},
    )
    return response, await response.json()


async def verify(client, world: World, key: str, body: Any, *, user: str = OWNER, admin: bool = False):
    response = await client.post(
        "/api/v1/payments/verify", json=body, headers=world.headers(user, admin=admin, key=key)
    )
    return response, await response.json()


async def create_raw(client, world: World, key: str | None, data: bytes, *, user: str = OWNER):
    """POST /create with the body exactly as given (numbers as written, broken JSON, odd bytes)."""
    headers = {**world.headers(user, key=key), "Content-Type": "application/json"}
    response = await client.post("/api/v1/payments/create", data=data, headers=headers)
    return response, await response.json()

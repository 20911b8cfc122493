"""POST /create carries the client's IP and X-Device-Fingerprint to fraud screening; a block is a 403."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments.agents.fraud_tables import FraudTables, TableFraudScreen
from payments.domain.fraud.rules import FraudRules, Subject, VelocityRule
from payments.domain.payment.commands import CreatePayment
from payments.domain.payment.ids import payment_id_for
from payments.domain.payment.service import BLOCKED_REASON, PaymentService
from payments.domain.payment.states import PaymentState
from payments.pipeline.settings import Settings
from payments.tables import MemoryWindowStore
from tests.fakes.context import fake_digest
from tests.fakes.gateway import InMemoryPaymentLocks
from tests.unit.web_payments._api import OWNER, ServiceBus, World, create

FINGERPRINT = "X-Device-Fingerprint"


def screened(world: World, *, limit: int) -> World:
    """``world`` with its service screening creates: at most ``limit`` payments per device a minute."""
    rule = VelocityRule(
        name="device_per_minute", subject=Subject.DEVICE, window_seconds=60, limit=Decimal(limit)
    )
    tables = FraudTables(
        MemoryWindowStore(), rules=FraudRules(velocity=(rule,)), clock=world.clock, digest=fake_digest
    )
    world.service = PaymentService(
        unit_of_work=world.store.unit_of_work,
        gateway=world.gateway,
        locks=InMemoryPaymentLocks(),
        clock=world.clock,
        fraud=TableFraudScreen(tables),
    )
    world.bus = ServiceBus(world.service)
    return world


async def test_the_device_fingerprint_and_client_ip_reach_the_command_and_the_payment(client, world):
    response, _ = await create(client, world, "k1", **{FINGERPRINT: "ab12.CD:34_ef-56"})

    assert response.status == 201
    [command] = world.bus.commands(CreatePayment)
    assert command.device_fingerprint == "ab12.CD:34_ef-56"
    assert command.actor.ip_address == "127.0.0.1"
    payment = world.payments()[payment_id_for(OWNER, "k1")]
    assert (payment.device_fingerprint, payment.client_ip) == ("ab12.CD:34_ef-56", "127.0.0.1")


async def test_without_the_header_the_payment_has_no_device(client, world):
    response, _ = await create(client, world, "k1")

    assert response.status == 201
    [command] = world.bus.commands(CreatePayment)
    assert command.device_fingerprint is None


@pytest.mark.parametrize("fingerprint", ["", "x" * 129, "dev 1", "dev/1", "dev;1", "dev,1"])
async def test_a_malformed_device_fingerprint_is_refused_before_anything_is_sent(client, world, fingerprint):
    response, body = await create(client, world, "k1", **{FINGERPRINT: fingerprint})

    assert response.status == 400
    assert body["error"]["code"] == "validation_failed"
    assert FINGERPRINT in body["error"]["message"]
    assert world.bus.sent == []
    assert world.payments() == {}


async def test_a_fingerprint_of_128_characters_is_accepted(client, world):
    response, _ = await create(client, world, "k1", **{FINGERPRINT: "f" * 128})

    assert response.status == 201


async def test_a_create_the_screen_blocks_is_answered_403_and_the_payment_is_cancelled(aiohttp_client):
    world = screened(World(Settings()), limit=1)
    client = await aiohttp_client(world.app())

    first, _ = await create(client, world, "k1", **{FINGERPRINT: "dev-1"})
    second, body = await create(client, world, "k2", **{FINGERPRINT: "dev-1"})
    again, again_body = await create(client, world, "k2", **{FINGERPRINT: "dev-1"})

    assert first.status == 201
    assert second.status == 403
    assert body["error"]["code"] == "payment_blocked"
    assert "device_per_minute" in body["error"]["message"]
    assert (again.status, again_body["error"]["code"]) == (403, "payment_blocked")
    blocked = world.payments()[payment_id_for(OWNER, "k2")]
    assert (blocked.status, blocked.failure_reason) == (PaymentState.CANCELLED, BLOCKED_REASON)

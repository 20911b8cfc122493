"""Idempotency-Key on the payment writes: replay, reuse, in flight, scope, and the key's own rules."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from payments.domain.payment.commands import CreatePayment, VerifyPayment
from payments.web.idempotency import canonical_json, fingerprint, is_final, scoped_key
from payments.web.payment_requests import parse_json
from tests.unit.web_payments._api import OWNER, STRANGER, a_body, create, create_raw, verify
from tests.waiting import eventually


async def test_the_same_request_again_replays_the_stored_answer_marked_as_a_replay(client, world):
    first, first_body = await create(client, world, "order-1")
    world.tick()

    second, second_body = await create(client, world, "order-1")

    assert (first.status, second.status) == (201, 201)
    assert second_body == first_body
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Content-Type"].startswith("application/json")
    assert "Idempotent-Replayed" not in first.headers
    assert len(world.bus.commands(CreatePayment)) == 1


async def test_key_order_and_whitespace_do_not_make_a_different_request(client, world):
    await create(client, world, "order-1")
    raw = b'{ "customer": {"phone": "9876543210", "email": "asha@example.com", "name": "Asha Rao"},\n'
    raw += b' "description": "CommDesk Pro", "currency": "INR", "amount": "499.00" }'

    response, _ = await create_raw(client, world, "order-1", raw)

    assert response.headers["Idempotent-Replayed"] == "true"


async def test_the_same_key_with_another_body_is_refused_with_422(client, world):
    await create(client, world, "order-1")

    response, body = await create(client, world, "order-1", a_body(amount="500.00"))

    assert response.status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert len(world.bus.commands(CreatePayment)) == 1


async def test_a_request_with_its_key_still_in_flight_gets_409_and_sends_nothing(client, world):
    world.bus.gate = asyncio.Event()
    first = asyncio.create_task(create(client, world, "order-1"))
    await eventually(lambda: world.bus.sent, what="the first command to be sent")

    second, body = await create(client, world, "order-1")
    world.bus.gate.set()
    first_response, _ = await first

    assert second.status == 409
    assert body["error"]["code"] == "request_in_flight"
    assert second.headers["Retry-After"] == "1"
    assert first_response.status == 201
    assert len(world.bus.commands(CreatePayment)) == 1


async def test_of_many_concurrent_identical_requests_one_sends_the_command(client, world):
    world.bus.gate = asyncio.Event()
    tasks = [asyncio.create_task(create(client, world, "order-1")) for _ in range(12)]
    # Every request has been answered 409 or is the one waiting at the gate.
    await eventually(lambda: sum(task.done() for task in tasks) == 11, what="11 answers")
    world.bus.gate.set()

    statuses = sorted(response.status for response, _ in await asyncio.gather(*tasks))

    assert statuses == [201] + [409] * 11
    assert len(world.bus.commands(CreatePayment)) == 1
    assert len(world.payments()) == 1


async def test_two_users_with_the_same_key_make_two_payments(client, world):
    mine, my_body = await create(client, world, "order-1", user=OWNER)
    theirs, their_body = await create(client, world, "order-1", user=STRANGER)

    assert (mine.status, theirs.status) == (201, 201)
    assert my_body["paymentId"] != their_body["paymentId"]
    assert "Idempotent-Replayed" not in theirs.headers


async def test_a_key_used_for_a_create_can_also_be_used_for_a_verify(client, world):
    _, payment = await create(client, world, "shared-key")

    response, body = await verify(client, world, "shared-key", {"paymentId": payment["paymentId"]})

    assert response.status == 200
    assert body["paymentId"] == payment["paymentId"]
    assert len(world.bus.commands(VerifyPayment)) == 1


async def test_a_write_without_an_idempotency_key_is_refused_and_sends_nothing(client, world):
    response, body = await create_raw(client, world, None, b'{"amount": "1.00"}')

    assert response.status == 400
    assert body["error"]["code"] == "idempotency_key_required"
    assert world.bus.sent == []


@pytest.mark.parametrize("key", ["k" * 256, "clé-1", "tab\there"], ids=["too-long", "non-ascii", "control"])
async def test_a_key_that_is_not_1_to_255_printable_ascii_characters_is_refused(client, world, key):
    headers = {**world.headers(), "Idempotency-Key": key.encode("utf-8").decode("latin-1")}

    response = await client.post("/api/v1/payments/create", json=a_body(), headers=headers)

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "idempotency_key_invalid"
    assert world.bus.sent == []


async def test_a_key_of_255_characters_is_accepted(client, world):
    response, _ = await create(client, world, "k" * 255)

    assert response.status == 201


async def test_a_refused_body_stores_nothing_so_the_key_can_be_used_with_a_corrected_body(client, world):
    refused, _ = await create(client, world, "order-1", a_body(amount="0"))

    accepted, _ = await create(client, world, "order-1")

    assert (refused.status, accepted.status) == (400, 201)


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_numbers_as_written():
    parsed = parse_json(b'{"b": [1, 10.50, "x"], "a": {"d": null, "c": true}}')

    assert canonical_json(parsed) == '{"a":{"c":true,"d":null},"b":[1,10.50,"x"]}'


def test_the_fingerprint_tells_apart_what_makes_a_different_request():
    base = fingerprint("POST", "/api/v1/payments/create", {"amount": Decimal("10.50")})

    assert base == fingerprint("post", "/api/v1/payments/create", {"amount": Decimal("10.50")})
    assert base != fingerprint("POST", "/api/v1/payments/create", {"amount": Decimal("10.5")})
    assert base != fingerprint("POST", "/api/v1/payments/create", {"amount": "10.50"})
    assert base != fingerprint("POST", "/api/v1/payments/verify", {"amount": Decimal("10.50")})


def test_the_store_key_is_scoped_to_user_and_route_and_reveals_neither():
    key = scoped_key(OWNER, "payments.create", "order-1")

    assert key != scoped_key(STRANGER, "payments.create", "order-1")
    assert key != scoped_key(OWNER, "payments.verify", "order-1")
    assert OWNER not in key
    assert len(key) == 64


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (200, True),
        (201, True),
        (202, False),
        (400, True),
        (404, True),
        (422, True),
        (500, False),
        (503, False),
    ],
)
def test_only_answers_that_end_the_request_are_final(status, final):
    assert is_final(status) is final

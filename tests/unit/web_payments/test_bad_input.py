"""Bad input gets a 4xx with a precise code, and nothing is sent, stored or remembered."""

from __future__ import annotations

import json

import pytest

from payments.pipeline.settings import PaymentSettings, Settings
from tests.unit.web_payments._api import World, a_body, create, create_raw

CUSTOMER = {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"}


def customer(**overrides):
    return CUSTOMER | overrides


def with_number(amount: str) -> bytes:
    """A body whose amount is the JSON number spelled ``amount``."""
    return json.dumps(a_body(amount="@")).replace('"@"', amount).encode()


def assert_nothing_happened(world: World) -> None:
    assert world.bus.sent == []
    assert world.payments() == {}
    assert len(world.idempotency) == 0


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("-5.00", "amount_invalid"),
        ("0", "amount_invalid"),
        ("0.00", "amount_invalid"),
        ("abc", "amount_invalid"),
        ("1e3", "amount_invalid"),
        ("1_000", "amount_invalid"),
        ("NaN", "amount_invalid"),
        (" 10", "amount_invalid"),
        ("", "amount_invalid"),
        ("10.123", "amount_precision"),
        ("500000.01", "amount_too_large"),
        ("99999999999999999999", "amount_too_large"),
    ],
)
async def test_a_bad_amount_string_is_refused_with_its_code(client, world, amount, code):
    response, body = await create(client, world, "k", a_body(amount=amount))

    assert response.status == 400
    assert body["error"]["code"] == code
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("-5", "amount_invalid"),
        ("0", "amount_invalid"),
        ("0.0", "amount_invalid"),
        ("10.123", "amount_precision"),
        ("1.5e-3", "amount_precision"),
        ("1e30", "amount_too_large"),
        ("1000000000000", "amount_too_large"),
        ("true", "amount_invalid"),
        ("null", "amount_invalid"),
        ("[1]", "amount_invalid"),
    ],
)
async def test_a_bad_amount_number_is_refused_with_its_code(client, world, number, code):
    response, body = await create_raw(client, world, "k", with_number(number))

    assert response.status == 400
    assert body["error"]["code"] == code
    assert_nothing_happened(world)


@pytest.mark.parametrize("amount", ["500000", "500000.00", "0.01", "10.500"])
async def test_amounts_at_the_limits_are_accepted(client, world, amount):
    response, _ = await create(client, world, "k", a_body(amount=amount))

    assert response.status == 201


@pytest.mark.parametrize("currency", ["USD", "inr", "XYZ", 356, None])
async def test_a_currency_not_on_the_allow_list_is_refused(client, world, currency):
    response, body = await create(client, world, "k", a_body(currency=currency))

    assert response.status == 400
    assert body["error"]["code"] == "currency_unsupported"
    assert_nothing_happened(world)


async def test_precision_follows_the_currency(aiohttp_client):
    world = World(Settings(payments=PaymentSettings(currencies=frozenset({"INR", "JPY"}))))
    client = await aiohttp_client(world.app())

    response, body = await create(client, world, "k", a_body(amount="100.5", currency="JPY"))

    assert response.status == 400
    assert body["error"]["code"] == "amount_precision"


@pytest.mark.parametrize(
    "phone", ["12345", "98765432100", "+1234567", "+1234567890123456", "98765-43210", 9876543210]
)
async def test_a_phone_cashfree_would_refuse_is_refused(client, world, phone):
    response, body = await create(client, world, "k", a_body(customer=customer(phone=phone)))

    assert response.status == 400
    assert body["error"]["code"] == "customer_phone_invalid"
    assert_nothing_happened(world)


@pytest.mark.parametrize("phone", ["+919876543210", "+12345678"])
async def test_international_phones_are_accepted(client, world, phone):
    response, _ = await create(client, world, "k", a_body(customer=customer(phone=phone)))

    assert response.status == 201


async def test_metadata_larger_than_the_limit_is_refused(client, world):
    metadata = {"notes": "x" * world.settings.payments.max_metadata_bytes}

    response, body = await create(client, world, "k", a_body(metadata=metadata))

    assert response.status == 400
    assert body["error"]["code"] == "metadata_too_large"
    assert_nothing_happened(world)


async def test_metadata_within_the_limit_travels_with_the_command(client, world):
    response, _ = await create(client, world, "k", a_body(metadata={"plan": "pro", "seats": 5}))

    assert response.status == 201
    [(_, command)] = world.bus.sent
    assert dict(command.metadata) == {"plan": "pro", "seats": 5}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"amount": NaN}', b'{"amount": Infinity}', b'{"a": 1, "a": 2}', b"\xff\xfe{}", b"[1,"],
    ids=["empty", "truncated", "nan", "infinity", "duplicate-key", "not-utf8", "broken-array"],
)
async def test_malformed_json_is_refused(client, world, raw):
    response, body = await create_raw(client, world, "k", raw)

    assert response.status == 400
    assert body["error"]["code"] == "malformed_json"
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (a_body(amout="1.00"), "amout"),
        (a_body(customer=customer(nickname="A")), "customer.nickname"),
        (a_body(return_url="https://x.example"), "return_url"),
    ],
    ids=["top-level", "nested", "snake-case"],
)
async def test_an_unknown_field_is_refused_with_its_path(client, world, body, path):
    response, answer = await create(client, world, "k", body)

    assert response.status == 400
    assert answer["error"]["code"] == "validation_failed"
    assert answer["error"]["message"] == f"{path}: unknown field"
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (a_body(customer=customer(name="Asha\x00Rao")), "customer.name"),
        (a_body(customer=customer(email="asha@example.com\n")), "customer.email"),
        (a_body(description="Pro \u202eplan"), "description"),
        (a_body(description="tab\there"), "description"),
        (a_body(metadata={"note": "bell\x07"}), "metadata"),
        (a_body(metadata={"key\x1b": "v"}), "metadata"),
    ],
    ids=["nul", "newline", "bidi-override", "tab", "metadata-value", "metadata-key"],
)
async def test_control_characters_are_refused(client, world, body, path):
    response, answer = await create(client, world, "k", body)

    assert response.status == 400
    assert answer["error"]["code"] == "validation_failed"
    assert answer["error"]["message"].startswith(f"{path}: ")
    assert_nothing_happened(world)


async def test_a_lone_surrogate_is_refused_rather_than_breaking_the_command(client, world):
    raw = json.dumps(a_body(description="@")).replace('"@"', '"\\ud800"').encode()

    response, answer = await create_raw(client, world, "k", raw)

    assert response.status == 400
    assert answer["error"]["message"].startswith("description: ")
    assert_nothing_happened(world)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (a_body(customer=customer(name="As")), "customer.name"),
        (a_body(customer=customer(name="A" * 101)), "customer.name"),
        (a_body(customer=customer(name=42)), "customer.name"),
        (a_body(customer=customer(email="not-an-email")), "customer.email"),
        (a_body(customer=customer(email="a@" + "b" * 100 + ".in")), "customer.email"),
        (a_body(description="d" * 201), "description"),
        (a_body(metadata=["not", "an", "object"]), "metadata"),
        (a_body(returnUrl="ftp://example.com/back"), "returnUrl"),
        (a_body(returnUrl="javascript:alert(1)"), "returnUrl"),
        (a_body(returnUrl="https://example.com/" + "p" * 240), "returnUrl"),
        ({k: v for k, v in a_body().items() if k != "customer"}, "customer"),
        (a_body(customer="Asha"), "customer"),
    ],
    ids=[
        "short-name",
        "long-name",
        "name-not-text",
        "email",
        "long-email",
        "long-description",
        "metadata-list",
        "ftp-url",
        "javascript-url",
        "long-url",
        "missing-customer",
        "customer-not-object",
    ],
)
async def test_every_other_invalid_field_is_refused_with_its_path(client, world, body, path):
    response, answer = await create(client, world, "k", body)

    assert response.status == 400
    assert answer["error"]["code"] == "validation_failed"
    assert answer["error"]["message"].startswith(f"{path}: ")
    assert_nothing_happened(world)


async def test_a_body_that_is_not_an_object_is_refused(client, world):
    response, answer = await create(client, world, "k", [a_body()])

    assert response.status == 400
    assert answer["error"]["code"] == "validation_failed"
    assert_nothing_happened(world)


async def test_optional_fields_may_be_left_out_or_given(client, world):
    minimal = {"amount": "10.00", "currency": "INR", "customer": CUSTOMER}
    full = a_body(returnUrl="https://shop.example/return?order={order_id}", metadata={"plan": "pro"})

    first, _ = await create(client, world, "k1", minimal)
    second, _ = await create(client, world, "k2", full)

    assert (first.status, second.status) == (201, 201)


async def test_a_refusal_never_echoes_the_offending_value(client, world):
    response, answer = await create(client, world, "k", a_body(customer=customer(email="<script>x</script>")))

    assert response.status == 400
    assert "<script>" not in json.dumps(answer)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"paymentId": "pay_a", "orderId": "ord_a"},
        {"paymentId": "bad id!"},
        {"paymentId": 7},
        {"id": "pay_a"},
    ],
    ids=["neither", "both", "bad-id", "not-text", "unknown-field"],
)
async def test_a_verify_needs_exactly_one_well_formed_id(client, world, body):
    response = await client.post("/api/v1/payments/verify", json=body, headers=world.headers(key="v"))

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "validation_failed"
    assert world.bus.sent == []

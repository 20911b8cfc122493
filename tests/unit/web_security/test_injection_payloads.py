"""SQL, script and template payloads, a bidi override and a NUL in every string a client controls.

Each is either refused with 400 (nothing sent or stored) or kept as the inert text it is: stored and
returned exactly as sent, as a JSON string. Never a 5xx. Free-text fields (description, metadata,
customer name, refund reason) must accept the printable payloads, since real names and notes hold
quotes, angle brackets and braces; control and bidi characters are refused everywhere.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.unit.web_payments._api import a_body, create, verify
from tests.unit.web_refunds._api import a_paid_payment, a_refund, initiate
from tests.unit.web_security._site import DEAD_LETTER_QUEUE, Site

PRINTABLE = {
    "sql-or": "' OR 1=1; --",
    "sql-drop": '"; DROP TABLE payments; --',
    "script": "<script>alert(1)</script>",
    "template": "{{7*7}}",
}
CONTROL = {"bidi-override": "\u202e", "nul": "\x00"}
PAYLOADS = PRINTABLE | CONTROL
CUSTOMER = {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"}


def each(payloads: dict[str, str]):
    return pytest.mark.parametrize("payload", list(payloads.values()), ids=list(payloads))


def in_free_text(payload: str) -> str:
    """The payload inside ordinary text, so length rules never decide the outcome."""
    return f"Asha {payload} Rao"


def create_bodies(payload: str) -> dict[str, tuple[dict[str, Any], Any]]:
    """Field -> (a create body with the payload in that field, what the stored payment should hold)."""
    text = in_free_text(payload)
    metadata = {"note": payload, "tags": [payload, {"deep": payload}], f"key {payload}": 1}
    url = f"https://shop.example/return?q={payload}"
    email = f"asha{payload}@example.com"
    return {
        "description": (a_body(description=text), text),
        "metadata": (a_body(metadata=metadata), metadata),
        "customer.name": (a_body(customer=CUSTOMER | {"name": text}), text),
        "customer.email": (a_body(customer=CUSTOMER | {"email": email}), email),
        "customer.phone": (a_body(customer=CUSTOMER | {"phone": payload}), payload),
        "returnUrl": (a_body(returnUrl=url), url),
    }


def stored_field(payment: Any, field: str) -> Any:
    """The field as a stored ``Payment`` (or a ``CreatePayment`` command) holds it."""
    if field.startswith("customer."):
        return getattr(payment.customer, field.removeprefix("customer."))
    return payment.return_url if field == "returnUrl" else getattr(payment, field)


def assert_refused_cleanly(response, body: dict[str, Any], site: Site) -> None:
    assert response.status == 400, body
    assert body["error"]["code"] in {"validation_failed", "customer_phone_invalid"}
    assert site.bus.sent == []
    assert site.payments() == {}
    assert len(site.idempotency) == 0


FIELDS = list(create_bodies("x"))
FREE_TEXT = ["description", "metadata", "customer.name"]


@each(PAYLOADS)
@pytest.mark.parametrize("field", FIELDS)
async def test_a_payload_in_a_create_field_is_refused_or_stored_exactly(client, site, field, payload):
    sent, expected = create_bodies(payload)[field]

    response, body = await create(client, site, "k", sent)

    assert response.status < 500
    if response.status == 400:
        assert_refused_cleanly(response, body, site)
        return
    assert response.status == 201, body
    [payment] = site.payments().values()
    assert stored_field(payment, field) == expected
    assert payment.payment_id == body["paymentId"]


@each(PRINTABLE)
@pytest.mark.parametrize("field", FREE_TEXT)
async def test_printable_payloads_in_free_text_are_kept_as_text(client, site, field, payload):
    sent, expected = create_bodies(payload)[field]

    response, body = await create(client, site, "k", sent)

    assert response.status == 201, body
    [payment] = site.payments().values()
    assert stored_field(payment, field) == expected
    [(_, command)] = site.bus.sent  # crossed the bus as JSON and was decoded as the agent decodes it
    assert stored_field(command, field) == expected


@each(CONTROL)
@pytest.mark.parametrize("field", [*FREE_TEXT, "customer.email", "returnUrl"])
async def test_control_and_bidi_characters_are_refused_in_every_text_field(client, site, field, payload):
    sent, _ = create_bodies(payload)[field]

    response, body = await create(client, site, "k", sent)

    assert_refused_cleanly(response, body, site)


@each(PAYLOADS)
async def test_a_payload_as_the_phone_is_refused(client, site, payload):
    sent, _ = create_bodies(payload)["customer.phone"]

    response, body = await create(client, site, "k", sent)

    assert_refused_cleanly(response, body, site)
    assert body["error"]["code"] == "customer_phone_invalid"


@each(PAYLOADS)
@pytest.mark.parametrize("field", ["paymentId", "orderId"])
async def test_a_payload_as_a_verify_id_is_refused_before_any_lookup(client, site, field, payload):
    response, body = await verify(client, site, "v", {field: payload})

    assert response.status == 400
    assert body["error"]["code"] == "validation_failed"
    assert site.bus.sent == []
    assert len(site.idempotency) == 0


@each(PRINTABLE)
async def test_a_payload_as_a_refund_reason_is_stored_and_returned_exactly(client, site, payload):
    paid = await a_paid_payment(client, site)
    reason = in_free_text(payload)

    response, body = await initiate(client, site, "r", a_refund(paid["paymentId"], reason=reason))
    raw = await response.text()
    read = await client.get(f"/api/v1/refunds/{body['refundId']}", headers=site.headers())

    assert response.status == 201, body
    assert response.content_type == "application/json"
    assert body["reason"] == reason
    assert json.dumps(reason) in raw  # a JSON string literal, escaped as JSON escapes it
    [refund] = site.refunds().values()
    assert refund.reason == reason
    assert (await read.json())["reason"] == reason


@each(CONTROL)
async def test_control_characters_in_a_refund_reason_are_refused(client, site, payload):
    paid = await a_paid_payment(client, site)
    sent_before = len(site.bus.sent)
    refund = a_refund(paid["paymentId"], reason=in_free_text(payload))

    response, body = await initiate(client, site, "r", refund)

    assert (response.status, body["error"]["code"]) == (400, "validation_failed")
    assert site.refunds() == {}
    assert len(site.bus.sent) == sent_before


@each(PAYLOADS)
async def test_a_payload_as_the_refunds_payment_id_is_refused(client, site, payload):
    response, body = await initiate(client, site, "r", a_refund(payload))

    assert (response.status, body["error"]["code"]) == (400, "validation_failed")
    assert site.refunds() == {}
    assert site.bus.sent == []


@each(PAYLOADS)
@pytest.mark.parametrize("name", ["userId", "status", "from", "to", "limit", "cursor"])
async def test_a_payload_in_a_history_parameter_is_refused(client, site, name, payload):
    response = await client.get("/api/v1/payments/history", params={name: payload}, headers=site.headers())

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "validation_failed"


@each(PAYLOADS)
async def test_a_payload_as_a_history_parameter_name_is_refused(client, site, payload):
    response = await client.get("/api/v1/payments/history", params={payload: "1"}, headers=site.headers())

    assert response.status == 400
    assert response.content_type == "application/json"
    assert (await response.json())["error"]["code"] == "validation_failed"


@each(PAYLOADS)
@pytest.mark.parametrize("path", ["/api/v1/admin/alerts", f"/api/v1/admin/dlq/{DEAD_LETTER_QUEUE}"])
async def test_a_payload_in_an_admin_lists_limit_is_refused(client, site, path, payload):
    response = await client.get(path, params={"limit": payload}, headers=site.headers("admin-1", admin=True))

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "limit_invalid"


@each(PAYLOADS)
@pytest.mark.parametrize(
    "template",
    [
        "/api/v1/payments/{}",
        "/api/v1/payments/status/{}",
        "/api/v1/payments/{}/invoice",
        "/api/v1/refunds/{}",
        "/api/v1/refunds/payment/{}",
        "/api/v1/admin/dlq/{}",
    ],
)
async def test_a_payload_as_a_path_id_is_not_found(client, site, template, payload):
    path = template.format(quote(payload, safe=""))

    response = await client.get(path, headers=site.headers("admin-1", admin=True))

    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"

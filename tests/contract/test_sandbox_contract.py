"""The local sandbox's answers validate against Cashfree's own response schemas (SPEC), errors included."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from payments.bridges.cashfree.sandbox import SandboxConfig, create_sandbox_app
from payments.bridges.cashfree.sandbox.jsonbody import loads
from payments.bridges.cashfree.sandbox.pg_routes import ENDPOINTS
from tests.contract.openapi_support import RecordedRequest, RecordedResponse, requires_spec, response_problems

pytestmark = requires_spec

APP_ID, SECRET = "contract-app", "contract-secret"
CREDENTIALS = {"x-client-id": APP_ID, "x-client-secret": SECRET, "x-api-version": "2025-01-01"}
PUBLIC = {"x-api-version": "2025-01-01"}
EVERYTHING = {"start_date": "2000-01-01", "end_date": "2100-12-31"}


@dataclass
class Recorder:
    """Calls the sandbox and keeps every exchange for validation."""

    client: TestClient
    exchanges: list[tuple[RecordedRequest, RecordedResponse]] = field(default_factory=list)

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        sent_headers = {
            **(CREDENTIALS if headers is None else headers),
            "x-request-id": f"req-{len(self.exchanges)}",
        }
        response = await self.client.request(method, path, json=body, headers=sent_headers)
        data = await response.read()
        request = RecordedRequest(method.lower(), path, sent_headers, None if body is None else b"{}")
        self.exchanges.append((request, RecordedResponse(response.status, response.headers, data)))
        return loads(data) if data else None

    def problems(self) -> list[str]:
        return [problem for exchange in self.exchanges for problem in response_problems(*exchange)]

    def statuses(self) -> set[int]:
        return {response.status_code for _, response in self.exchanges}

    def operations(self) -> set[str]:
        """The sandbox endpoints the recorded requests reached."""
        return {name for request, _ in self.exchanges if (name := operation_of(request))}


def operation_of(request: RecordedRequest) -> str | None:
    for endpoint in ENDPOINTS:
        pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", endpoint.path)
        if endpoint.method.lower() == request.method and re.fullmatch(pattern, request.path):
            return endpoint.name
    return None


@pytest.fixture
async def recorder(aiohttp_client) -> Recorder:
    config = SandboxConfig(app_id=APP_ID, secret_key=SECRET, webhook_url="http://127.0.0.1:9/unused")
    return Recorder(await aiohttp_client(create_sandbox_app(config)))


def new_order(order_id: str, amount: float = 100.0, **fields: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "order_amount": amount,
        "order_currency": "INR",
        "customer_details": {
            "customer_id": "cust_1",
            "customer_phone": "9876543210",
            "customer_email": "buyer@example.com",
            "customer_name": "A Buyer",
        },
        **fields,
    }


def pay_with(order: dict[str, Any], method: dict[str, Any]) -> dict[str, Any]:
    return {"payment_session_id": order["payment_session_id"], "payment_method": method}


CARD = {
    "channel": "link",
    "card_number": "4111111111111111",
    "card_expiry_mm": "03",
    "card_expiry_yy": "30",
    "card_cvv": "123",
}
UPI_FAILS = {"upi": {"channel": "collect", "upi_id": "testfailure@gocash"}}
UPI_WAITS = {"upi": {"channel": "collect", "upi_id": "someone@okbank"}}
NETBANKING_PAYS = {"netbanking": {"channel": "link", "netbanking_bank_code": 3087}}
EXTRAS = {
    "order_tags": {"plan": "gold"},
    "order_note": "two mugs",
    "order_meta": {"return_url": "https://shop.example/r", "notify_url": "https://shop.example/n"},
}


async def orders_and_attempts(recorder: Recorder) -> None:
    """A paid order, one with a failed and a successful attempt, one dropped by /simulate."""
    call = recorder.call
    paid = await call("POST", "/pg/orders", new_order("contract-paid", 250.5, **EXTRAS))
    twice = await call("POST", "/pg/orders", new_order("contract-card"))
    dropped = await call("POST", "/pg/orders", new_order("contract-dropped"))
    await call("POST", "/pg/orders/sessions", pay_with(twice, UPI_FAILS), PUBLIC)
    await call("POST", "/pg/orders/sessions", pay_with(twice, {"card": CARD}), PUBLIC)
    await call("POST", "/pg/orders/sessions", pay_with(paid, NETBANKING_PAYS), PUBLIC)
    attempt = await call("POST", "/pg/orders/sessions", pay_with(dropped, UPI_WAITS), PUBLIC)
    wanted = {"payment_status": "USER_DROPPED"}
    body = {"entity": "PAYMENTS", "entity_id": attempt["cf_payment_id"], "entity_simulation": wanted}
    simulated = await call("POST", "/pg/simulate", body)
    await call("GET", f"/pg/simulate/{simulated['simulation_id']}")
    payments = await call("GET", "/pg/orders/contract-card/payments")
    await call("GET", f"/pg/orders/contract-card/payments/{payments[0]['cf_payment_id']}")
    await call("GET", "/pg/orders/contract-dropped/payments")
    await call("GET", "/pg/orders/contract-paid")
    await call("PATCH", "/pg/orders/contract-dropped", {"order_status": "TERMINATED"})


async def refunds_and_settlements(recorder: Recorder) -> None:
    call = recorder.call
    refunds = "/pg/orders/contract-paid/refunds"
    await call("POST", refunds, {"refund_id": "refund-1", "refund_amount": 50.25, "refund_note": "SUCCESS"})
    await call("POST", refunds, {"refund_id": "refund-2", "refund_amount": 10, "refund_speed": "INSTANT"})
    await call("GET", refunds)
    await call("GET", f"{refunds}/refund-1")
    await recorder.client.post("/_sandbox/settle", json={})
    await call("GET", "/pg/orders/contract-paid/settlements")


async def reports(recorder: Recorder) -> None:
    """Two pages of each report, so both a cursor and the last page's null are checked."""
    for path in ("/pg/settlements", "/pg/settlement/recon", "/pg/recon"):
        first = await recorder.call("POST", path, {"pagination": {"limit": 1}, "filters": EVERYTHING})
        cursor = first["cursor"]
        await recorder.call(
            "POST", path, {"pagination": {"limit": 10, "cursor": cursor}, "filters": EVERYTHING}
        )


async def test_every_successful_answer_matches_the_spec(recorder: Recorder):
    await orders_and_attempts(recorder)
    await refunds_and_settlements(recorder)
    await reports(recorder)

    assert recorder.statuses() == {200}
    assert recorder.operations() == {endpoint.name for endpoint in ENDPOINTS}
    assert recorder.problems() == []


async def test_every_error_answer_matches_the_spec(recorder: Recorder):
    call = recorder.call
    await call("POST", "/pg/orders", new_order("contract-dup"))
    await call("POST", "/pg/orders", new_order("contract-dup"))  # 409
    await call("POST", "/pg/orders", new_order("contract-bad", -1))  # 400
    await call("GET", "/pg/orders/contract-dup", headers={"x-api-version": "2025-01-01"})  # 401
    await call("GET", "/pg/orders/nope")  # 404
    keyed = {**CREDENTIALS, "x-idempotency-key": "k"}
    await call("POST", "/pg/orders", new_order("contract-key"), keyed)
    await call("POST", "/pg/orders", new_order("contract-key", 5), keyed)  # 422
    await recorder.client.post("/_sandbox/faults/next", json={"statuses": [429, 500, 502]})
    # SPEC declares 502 only on the payment and refund reads.
    for _ in range(3):
        await call("GET", "/pg/orders/contract-dup/payments")

    assert recorder.statuses() == {200, 400, 401, 404, 409, 422, 429, 500, 502}
    assert recorder.problems() == []

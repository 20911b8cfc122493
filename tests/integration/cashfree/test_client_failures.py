"""Retries, timeouts, conflicts, bad credentials, and a secret that never shows, against the sandbox."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from payments.bridges.cashfree import wire
from payments.bridges.cashfree.client import idempotency_key
from payments.domain.errors import (
    DependencyUnavailable,
    GatewayAuthenticationFailed,
    GatewayConflict,
    GatewayRateLimited,
    NotFound,
)
from tests.integration.cashfree.conftest import APP_ID, SECRET
from tests.integration.cashfree.flows import order_request


async def test_a_500_is_retried_with_the_same_idempotency_key_and_then_succeeds(
    client, sandbox, sleeps, sent
):
    await sandbox.post("/_sandbox/faults/next", {"statuses": [500]})
    request = order_request()

    order = await client.create_order(request)

    assert order.order_id == request.order_id
    assert [r.attempt for r in sent] == [1, 2]
    assert {r.headers["x-idempotency-key"] for r in sent} == {idempotency_key(f"order:{request.order_id}")}
    assert len({r.headers["x-request-id"] for r in sent}) == 1
    assert len(sleeps) == 1
    assert 0 < sleeps[0] <= 1.0


async def test_the_backoff_grows_between_retries(client, sandbox, sleeps):
    await sandbox.post("/_sandbox/faults/next", {"statuses": [502, 503, 500]})

    await client.create_order(order_request())

    assert len(sleeps) == 3
    # 0.5, 1 and 2 s before jitter (at most 0.5 s), so each wait is longer than the one before it.
    assert sleeps[0] < sleeps[1] < sleeps[2]


async def test_a_429_waits_at_least_the_seconds_cashfree_asked_for(client, sandbox, sleeps):
    await sandbox.put("/_sandbox/faults", {"retry_after_seconds": 2})
    await sandbox.post("/_sandbox/faults/next", {"statuses": [429]})

    order = await client.create_order(order_request())

    assert order.order_status == "ACTIVE"
    assert len(sleeps) == 1
    assert sleeps[0] >= 2


async def test_a_call_gives_up_after_max_retries_of_5xx(open_client, sandbox, sleeps, sent):
    client = await open_client(max_retries=2)
    await sandbox.post("/_sandbox/faults/next", {"statuses": [500, 502, 503, 500]})

    with pytest.raises(DependencyUnavailable) as caught:
        await client.get_order("order_x")

    assert type(caught.value) is DependencyUnavailable
    assert "503" in str(caught.value)
    assert len(sent) == 3
    assert len(sleeps) == 2


async def test_a_call_still_rate_limited_after_its_retries_defers_by_cashfree_wait(
    open_client, sandbox, sleeps
):
    client = await open_client(max_retries=1)
    await sandbox.put("/_sandbox/faults", {"retry_after_seconds": 3})
    await sandbox.post("/_sandbox/faults/next", {"statuses": [429, 429]})

    with pytest.raises(GatewayRateLimited) as caught:
        await client.list_payments("order_x")

    assert caught.value.defer == 3
    assert sleeps == [pytest.approx(3, abs=0.6)]


async def test_no_retries_at_all_when_max_retries_is_zero(open_client, sandbox, sleeps, sent):
    client = await open_client(max_retries=0)
    await sandbox.post("/_sandbox/faults/next", {"statuses": [500]})

    with pytest.raises(DependencyUnavailable):
        await client.get_order("order_x")

    assert (len(sent), sleeps) == (1, [])


async def test_a_sandbox_slower_than_the_timeout_makes_the_gateway_unavailable(
    open_client, sandbox, sleeps, sent
):
    client = await open_client(timeout_seconds=0.2, max_retries=1)
    await sandbox.put("/_sandbox/faults", {"latency_ms": 1500})

    with pytest.raises(DependencyUnavailable, match="did not answer") as caught:
        await client.get_order("order_x")

    assert "TimeoutError" in str(caught.value)
    assert len(sent) == 2
    assert len(sleeps) == 1


async def test_creating_the_same_order_twice_returns_the_same_order(client):
    request = order_request(amount="250.00")

    first = await client.create_order(request)
    second = await client.create_order(request)

    assert second.cf_order_id == first.cf_order_id
    assert second.order_amount == first.order_amount


async def test_creating_an_order_id_again_with_another_amount_is_a_conflict(client):
    order_id = (await client.create_order(order_request(amount="250.00"))).order_id

    with pytest.raises(GatewayConflict, match=r"250\.00"):
        await client.create_order(order_request(order_id, amount="300.00"))


async def test_a_create_whose_answer_was_lost_is_recovered_by_its_retry(client, sandbox, sent):
    # The sandbox creates the order, then answers 500 (FACTS §1: the create succeeded unseen). The
    # retry carries the same idempotency key, so it gets the stored answer (or a 409 and a fetch).
    await sandbox.post("/_sandbox/faults/next", {"statuses": [{"status": 500, "apply": True}]})
    request = order_request(amount="42.00")

    order = await client.create_order(request)

    assert (order.order_id, order.order_amount) == (request.order_id, Decimal("42.00"))
    creates = [r for r in sent if r.path_template == "/orders"]
    assert [r.attempt for r in creates] == [1, 2]
    assert len({r.headers["x-idempotency-key"] for r in creates}) == 1


async def test_a_409_for_an_order_created_elsewhere_with_the_same_amount_is_success(client, sandbox):
    request = order_request(amount="75.25")
    existing = await _create_without_idempotency_key(sandbox, request.order_id, "75.25")

    order = await client.create_order(request)

    assert order.cf_order_id == existing["cf_order_id"]


async def test_a_409_for_an_order_created_elsewhere_with_another_amount_is_a_conflict(client, sandbox):
    request = order_request(amount="75.25")
    await _create_without_idempotency_key(sandbox, request.order_id, "80.00")

    with pytest.raises(GatewayConflict) as caught:
        await client.create_order(request)

    assert "80.00" in str(caught.value)


async def test_a_wrong_secret_is_an_authentication_failure_and_is_not_retried(open_client, sleeps, sent):
    client = await open_client(secret_key="not-the-secret")

    with pytest.raises(GatewayAuthenticationFailed):
        await client.get_order("order_x")

    assert (len(sent), sleeps) == (1, [])


async def test_the_secret_appears_in_no_log_line_and_no_error(open_client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_secret = "cfsk_ma_test_wrong_7f3e2a"
    raised: list[BaseException] = []
    good = await open_client(max_retries=1, timeout_seconds=0.2)
    bad = await open_client(secret_key=wrong_secret)
    await sandbox.post("/_sandbox/faults/next", {"statuses": [500, 500]})
    raised.append(await _raised(good.get_order("order_x")))
    raised.append(await _raised(bad.get_order("order_x")))
    raised.append(await _raised(good.get_order("order_that_never_was")))
    await sandbox.put("/_sandbox/faults", {"latency_ms": 1000})
    raised.append(await _raised(good.get_order("order_x")))

    assert [type(e) for e in raised] == [
        DependencyUnavailable,
        GatewayAuthenticationFailed,
        NotFound,
        DependencyUnavailable,
    ]
    texts = [record.getMessage() + repr(record.__dict__) for record in caplog.records]
    texts += [text for error in raised for text in _chain_texts(error)]
    texts += [repr(good), repr(bad)]
    assert len(caplog.records) >= 6
    assert [t for t in texts if SECRET in t or wrong_secret in t] == []


async def _raised(call) -> BaseException:
    try:
        await call
    except Exception as error:
        return error
    raise AssertionError("the call did not fail")


def _chain_texts(error: BaseException | None) -> list[str]:
    """str and repr of the error and of everything chained to it (cause and context)."""
    texts: list[str] = []
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(vars(current))]
        pending += [current.__cause__, current.__context__]
    return texts


async def _create_without_idempotency_key(sandbox, order_id: str, amount: str) -> dict:
    """Create an order as another system would: straight over HTTP, with none of our client's keys."""
    body = {
        "order_id": order_id,
        "order_amount": Decimal(amount),
        "order_currency": "INR",
        "customer_details": {"customer_id": "cust_9", "customer_phone": "9876543210"},
    }
    headers = {"x-client-id": APP_ID, "x-client-secret": SECRET, "x-api-version": "2025-01-01"}
    headers["content-type"] = "application/json"
    response = await sandbox.control.post("/pg/orders", data=wire.encode(body), headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()

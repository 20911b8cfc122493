"""Order Pay with test instruments, several attempts per order, /simulate, and the payment reads."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from tests.unit.sandbox.support import CREDENTIALS, PUBLIC, Pg, start_sandbox
from tests.waiting import eventually


def simulation(cf_payment_id: str, status: str, **extra: Any) -> dict[str, Any]:
    wanted = {"payment_status": status, **extra}
    return {"entity": "PAYMENTS", "entity_id": cf_payment_id, "entity_simulation": wanted}


async def pay(pg: Pg, order: dict[str, Any], method: dict[str, Any]):
    body = {"payment_session_id": order["payment_session_id"], "payment_method": method}
    return await pg.client.post("/pg/orders/sessions", json=body, headers=PUBLIC)


async def status_of(pg: Pg, order: dict[str, Any]) -> str:
    return str((await pg.call("GET", f"/orders/{order['order_id']}"))["order_status"])


async def test_the_success_vpa_pays_the_order_at_once(pg: Pg):
    order = await pg.create_order("42.00")

    answer = await pg.pay_upi(order, "testsuccess@gocash")
    payments = await pg.call("GET", f"/orders/{order['order_id']}/payments")

    assert answer["payment_method"] == "upi"
    assert answer["channel"] == "collect"
    assert answer["cf_payment_id"].isdigit()
    assert await status_of(pg, order) == "PAID"
    assert [p["payment_status"] for p in payments] == ["SUCCESS"]
    assert payments[0]["error_details"] is None
    assert payments[0]["is_captured"] is True
    assert str(payments[0]["payment_amount"]) == "42.00"


async def test_the_failure_vpa_fails_the_attempt_with_error_details(pg: Pg):
    order = await pg.create_order()

    answer = await pg.pay_upi(order, "testfailure@gocash")
    payment = await pg.call("GET", f"/orders/{order['order_id']}/payments/{answer['cf_payment_id']}")

    assert payment["payment_status"] == "FAILED"
    assert payment["error_details"]["error_code"] == "TRANSACTION_DECLINED"
    assert payment["error_details"]["error_reason"] == "auth_declined"
    assert payment["error_details"]["error_source"] == "customer"
    assert await status_of(pg, order) == "ACTIVE"


async def test_an_order_takes_attempts_until_one_succeeds(pg: Pg):
    order = await pg.create_order()

    await pg.pay_upi(order, "testfailure@gocash")
    await pg.pay_upi(order, "testfailure@gocash")
    await pg.pay_upi(order, "testsuccess@gocash")
    payments = await pg.call("GET", f"/orders/{order['order_id']}/payments")

    assert [p["payment_status"] for p in payments] == ["FAILED", "FAILED", "SUCCESS"]
    assert len({p["cf_payment_id"] for p in payments}) == 3
    assert await status_of(pg, order) == "PAID"


async def test_a_paid_order_refuses_another_attempt(pg: Pg):
    order = await pg.paid_order()

    response = await pay(pg, order, {"upi": {"channel": "collect", "upi_id": "testsuccess@gocash"}})

    assert response.status == 400
    assert (await response.json())["code"] == "order_already_paid"


async def test_an_expired_order_refuses_new_attempts(pg: Pg):
    order = await pg.create_order()

    await pg.advance(31 * 86_400)
    response = await pay(pg, order, {"upi": {"channel": "collect", "upi_id": "testsuccess@gocash"}})

    assert response.status == 400
    assert (await response.json())["code"] == "order_expired"
    assert await status_of(pg, order) == "EXPIRED"


async def test_a_terminated_order_refuses_new_attempts(pg: Pg):
    order = await pg.create_order()
    await pg.call("PATCH", f"/orders/{order['order_id']}", {"order_status": "TERMINATED"})

    response = await pay(pg, order, {"upi": {"channel": "collect", "upi_id": "testsuccess@gocash"}})

    assert (await response.json())["code"] == "order_terminated"


@pytest.mark.parametrize(
    ("method", "status"),
    [
        (
            {
                "card": {
                    "channel": "link",
                    "card_number": "4111111111111111",
                    "card_expiry_mm": "03",
                    "card_expiry_yy": "30",
                    "card_cvv": "123",
                }
            },
            "SUCCESS",
        ),
        (
            {
                "card": {
                    "channel": "link",
                    "card_number": "4000000000000002",
                    "card_expiry_mm": "03",
                    "card_expiry_yy": "30",
                    "card_cvv": "123",
                }
            },
            "FAILED",
        ),
        ({"netbanking": {"channel": "link", "netbanking_bank_code": 3087}}, "SUCCESS"),
        ({"netbanking": {"channel": "link", "netbanking_bank_code": 3088}}, "FAILED"),
        ({"netbanking": {"channel": "link", "netbanking_bank_code": 3021}}, "PENDING"),
        ({"upi": {"channel": "collect", "upi_id": "someone@okbank"}}, "PENDING"),
        ({"upi": {"channel": "link"}}, "PENDING"),
    ],
)
async def test_each_test_instrument_decides_its_attempt(pg: Pg, method, status):
    order = await pg.create_order()

    response = await pay(pg, order, method)
    payments = await pg.call("GET", f"/orders/{order['order_id']}/payments")

    assert response.status == 200
    assert [p["payment_status"] for p in payments] == [status]
    assert list(payments[0]["payment_method"]) == list(method)


async def test_a_card_number_is_masked_and_its_attempt_links_to_the_sandbox_page(pg: Pg):
    order = await pg.create_order()
    card = {
        "channel": "link",
        "card_number": "4838305610460100",
        "card_expiry_mm": "12",
        "card_expiry_yy": "30",
        "card_cvv": "123",
    }

    answer = await (await pay(pg, order, {"card": card})).json()
    page = await pg.client.get(URL(answer["data"]["url"]).path)

    assert answer["action"] == "link"
    assert (await page.json())["payment_method"]["card"]["card_number"] == "XXXXXXXXXXXX0100"


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ({}, "payment_method_invalid"),
        ({"upi": {}, "card": {}}, "payment_method_invalid"),
        ({"wallet": {}}, "payment_method_invalid"),
        ({"upi": {"channel": "collect"}}, "upi_id_missing"),
        ({"upi": {"channel": "carrier-pigeon"}}, "channel_invalid"),
        (
            {
                "card": {
                    "channel": "link",
                    "card_number": "4111111111111111",
                    "card_expiry_mm": "03",
                    "card_expiry_yy": "30",
                }
            },
            "card_cvv_missing",
        ),
        ({"netbanking": {"channel": "link"}}, "netbanking_bank_code_missing"),
    ],
)
async def test_a_bad_payment_method_answers_400_with_its_code(pg: Pg, method, code):
    order = await pg.create_order()

    response = await pay(pg, order, method)

    assert response.status == 400
    assert (await response.json())["code"] == code


async def test_an_unknown_session_answers_400(pg: Pg):
    body = {"payment_session_id": "session_nope", "payment_method": {"upi": {"channel": "link"}}}

    response = await pg.client.post("/pg/orders/sessions", json=body, headers=PUBLIC)

    assert response.status == 400
    assert (await response.json())["code"] == "payment_session_id_invalid"


async def test_simulate_decides_a_pending_attempt_and_reads_back(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "someone@okbank")

    simulated = await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "SUCCESS"))
    read_back = await pg.call("GET", f"/simulate/{simulated['simulation_id']}")

    assert simulated == read_back
    assert simulated["entity_simulation"] == {"payment_status": "SUCCESS"}
    assert await status_of(pg, order) == "PAID"


@pytest.mark.parametrize(("status", "order_status"), [("FAILED", "ACTIVE"), ("USER_DROPPED", "ACTIVE")])
async def test_simulate_can_fail_or_drop_an_attempt(pg: Pg, status, order_status):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "someone@okbank")

    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], status, payment_error_code="U30"))
    payment = await pg.call("GET", f"/orders/{order['order_id']}/payments/{attempt['cf_payment_id']}")

    assert payment["payment_status"] == status
    assert payment["error_details"]["error_code"] in {"U30", "USER_DROPPED"}
    assert await status_of(pg, order) == order_status


async def test_simulate_pending_leaves_the_attempt_pending(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "someone@okbank")

    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "PENDING"))
    payment = await pg.call("GET", f"/orders/{order['order_id']}/payments/{attempt['cf_payment_id']}")

    assert payment["payment_status"] == "PENDING"


async def test_simulate_refuses_a_finished_attempt_and_an_unknown_one(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "testfailure@gocash")

    finished = await pg.client.post(
        "/pg/simulate", json=simulation(attempt["cf_payment_id"], "SUCCESS"), headers=CREDENTIALS
    )
    unknown = await pg.client.post("/pg/simulate", json=simulation("123", "SUCCESS"), headers=CREDENTIALS)

    assert (finished.status, (await finished.json())["code"]) == (400, "payment_not_pending")
    assert (unknown.status, (await unknown.json())["code"]) == (404, "payment_not_found")


async def test_simulate_cannot_pay_an_order_twice(pg: Pg):
    order = await pg.create_order()
    first = await pg.pay_upi(order, "someone@okbank")
    second = await pg.pay_upi(order, "someone@okbank")
    await pg.call("POST", "/simulate", simulation(first["cf_payment_id"], "SUCCESS"))

    response = await pg.client.post(
        "/pg/simulate", json=simulation(second["cf_payment_id"], "SUCCESS"), headers=CREDENTIALS
    )

    assert (await response.json())["code"] == "order_already_paid"


async def test_an_attempt_on_a_since_expired_order_may_still_succeed(pg: Pg):
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "someone@okbank")
    await pg.advance(31 * 86_400)

    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "SUCCESS"))

    assert await status_of(pg, order) == "PAID"


async def test_the_attempt_delay_holds_the_outcome_until_the_sandbox_clock_passes_it(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, attempt_delay_seconds=300)
    order = await pg.create_order()

    await pg.pay_upi(order, "testsuccess@gocash")
    before = await status_of(pg, order)
    await pg.advance(301)

    assert before == "ACTIVE"
    assert await status_of(pg, order) == "PAID"


async def test_with_a_fast_clock_the_attempt_delay_passes_by_itself(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, attempt_delay_seconds=60, clock_speed=1000)
    order = await pg.create_order()

    await pg.pay_upi(order, "testsuccess@gocash")

    await eventually(lambda: status_is(pg, order, "PAID"), what="the delayed attempt to succeed")


async def status_is(pg: Pg, order: dict[str, Any], wanted: str) -> bool:
    return await status_of(pg, order) == wanted


async def test_a_payment_of_another_order_is_not_found(pg: Pg):
    paid = await pg.paid_order()
    other = await pg.create_order()
    payment = (await pg.call("GET", f"/orders/{paid['order_id']}/payments"))[0]

    response = await pg.client.get(
        f"/pg/orders/{other['order_id']}/payments/{payment['cf_payment_id']}", headers=CREDENTIALS
    )

    assert response.status == 404
    assert (await response.json())["code"] == "payment_not_found"


async def test_an_order_without_attempts_lists_no_payments(pg: Pg):
    order = await pg.create_order()

    assert await pg.call("GET", f"/orders/{order['order_id']}/payments") == []


async def test_a_delayed_success_on_an_order_already_paid_fails_instead(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, attempt_delay_seconds=300)
    order = await pg.create_order()
    first = await pg.pay_upi(order, "testsuccess@gocash")
    second = await pg.pay_upi(order, "testsuccess@gocash")

    await pg.advance(301)
    payments = {p["cf_payment_id"]: p for p in await pg.call("GET", f"/orders/{order['order_id']}/payments")}

    assert payments[first["cf_payment_id"]]["payment_status"] == "SUCCESS"
    assert payments[second["cf_payment_id"]]["payment_status"] == "FAILED"
    assert payments[second["cf_payment_id"]]["error_details"]["error_code"] == "ORDER_ALREADY_PAID"


async def test_simulate_overrides_a_planned_outcome_that_is_not_due_yet(aiohttp_client):
    pg = await start_sandbox(aiohttp_client, attempt_delay_seconds=300)
    order = await pg.create_order()
    attempt = await pg.pay_upi(order, "testsuccess@gocash")

    await pg.call("POST", "/simulate", simulation(attempt["cf_payment_id"], "FAILED"))
    await pg.advance(301)

    assert await status_of(pg, order) == "ACTIVE"
    payment = await pg.call("GET", f"/orders/{order['order_id']}/payments/{attempt['cf_payment_id']}")
    assert payment["payment_status"] == "FAILED"

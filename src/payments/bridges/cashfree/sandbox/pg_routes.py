"""The PG API handlers, under ``/pg`` like Cashfree's base URL, and the table that routes them.

Rate limits are Cashfree's sandbox limits per minute (FACTS §9); the operations FACTS does not list
(terminate, refunds list, simulate, payment by id) get 60 per minute per app, and the settlement and
recon reports share the "Get Settlements" figure of 20.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from payments.bridges.cashfree.sandbox import orders, payments, refunds
from payments.bridges.cashfree.sandbox.entities import (
    order_entity,
    pay_entity,
    payment_entity,
    refund_entity,
    settlement_entity,
    simulation_entity,
)
from payments.bridges.cashfree.sandbox.errors import not_found
from payments.bridges.cashfree.sandbox.model import Order
from payments.bridges.cashfree.sandbox.paging import page_of, paginate, time_range
from payments.bridges.cashfree.sandbox.pg_middleware import Endpoint, json_answer
from payments.bridges.cashfree.sandbox.ratelimit import Limit, LimitKind
from payments.bridges.cashfree.sandbox.reports import account_events, settlement_recon_rows, settlement_rows
from payments.bridges.cashfree.sandbox.settlements import settlement_of
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox
from payments.bridges.cashfree.sandbox.validation import json_object


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


async def _body(request: web.Request) -> dict[str, object]:
    return json_object(await request.read())


def _order(request: web.Request) -> Order:
    sandbox = _sandbox(request)
    order = sandbox.ledger.order(request.match_info["order_id"])
    orders.expire_if_due(order, sandbox.now())
    return order


async def create_order(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    return json_answer(order_entity(orders.create_order(sandbox.ledger, await _body(request), sandbox.now())))


async def get_order(request: web.Request) -> web.Response:
    return json_answer(order_entity(_order(request)))


async def terminate_order(request: web.Request) -> web.Response:
    sandbox, order = _sandbox(request), _order(request)
    return json_answer(
        order_entity(orders.terminate(sandbox.ledger, order, await _body(request), sandbox.now()))
    )


async def pay_order(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    delay = sandbox.config.attempt_delay_seconds
    attempt, events = payments.pay(sandbox.ledger, await _body(request), sandbox.now(), delay)
    sandbox.publish(events)
    return json_answer(
        pay_entity(attempt, f"{request.url.origin()}/_sandbox/payments/{attempt.cf_payment_id}")
    )


async def list_payments(request: web.Request) -> web.Response:
    ledger, order = _sandbox(request).ledger, _order(request)
    return json_answer([payment_entity(order, ledger.attempts[cf_id]) for cf_id in order.attempt_ids])


async def get_payment(request: web.Request) -> web.Response:
    ledger, order = _sandbox(request).ledger, _order(request)
    attempt = ledger.attempt(request.match_info["cf_payment_id"])
    if attempt.order_id != order.order_id:
        raise not_found("payment_not_found", "the order has no such payment")
    return json_answer(payment_entity(order, attempt))


async def create_refund(request: web.Request) -> web.Response:
    sandbox, order = _sandbox(request), _order(request)
    refund, events = refunds.create_refund(sandbox.ledger, order, await _body(request), sandbox.now())
    sandbox.publish(events)
    return json_answer(refund_entity(refund))


async def list_refunds(request: web.Request) -> web.Response:
    ledger, order = _sandbox(request).ledger, _order(request)
    return json_answer([refund_entity(refund) for refund in ledger.refunds_of(order)])


async def get_refund(request: web.Request) -> web.Response:
    ledger, order = _sandbox(request).ledger, _order(request)
    refund = ledger.refunds.get((order.order_id, request.match_info["refund_id"]))
    if refund is None:
        raise not_found("refund_not_found", "the order has no refund with that id")
    return json_answer(refund_entity(refund))


async def order_settlement(request: web.Request) -> web.Response:
    return json_answer(settlement_entity(settlement_of(_sandbox(request).ledger, _order(request))))


async def all_settlements(request: web.Request) -> web.Response:
    body = await _body(request)
    page, (filters, window) = page_of(body), time_range(body, required=False)
    return json_answer(paginate(settlement_rows(_sandbox(request).ledger, filters, window), page))


async def settlement_recon(request: web.Request) -> web.Response:
    body = await _body(request)
    page, (filters, window) = page_of(body), time_range(body, required=False)
    return json_answer(paginate(settlement_recon_rows(_sandbox(request).ledger, filters, window), page))


async def recon(request: web.Request) -> web.Response:
    body = await _body(request)
    page, (_, window) = page_of(body), time_range(body, required=True)
    return json_answer(paginate(account_events(_sandbox(request).ledger, window), page))


async def simulate(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    simulation, events = payments.simulate(sandbox.ledger, await _body(request), sandbox.now())
    sandbox.publish(events)
    return json_answer(simulation_entity(simulation))


async def get_simulation(request: web.Request) -> web.Response:
    simulation = _sandbox(request).ledger.simulations.get(request.match_info["simulation_id"])
    if simulation is None:
        raise not_found("simulation_not_found", "no simulation has that id")
    return json_answer(simulation_entity(simulation))


def _limit(bucket: str, per_minute: int, kind: LimitKind = LimitKind.APP_ID) -> Limit:
    return Limit(bucket, per_minute, kind)


_ORDER: Final = "/pg/orders/{order_id}"
#: Every PG operation; ``/orders/sessions`` comes before ``/orders/{order_id}`` so it is matched first.
ENDPOINTS: Final = (
    Endpoint("create_order", "POST", "/pg/orders", create_order, _limit("create_order", 30), write=True),
    Endpoint(
        "pay_order",
        "POST",
        "/pg/orders/sessions",
        pay_order,
        _limit("pay_order", 30, LimitKind.IP),
        write=True,
        public=True,
    ),
    Endpoint("get_order", "GET", _ORDER, get_order, _limit("get_order", 60)),
    Endpoint("terminate_order", "PATCH", _ORDER, terminate_order, _limit("terminate_order", 60), write=True),
    Endpoint("list_payments", "GET", f"{_ORDER}/payments", list_payments, _limit("list_payments", 30)),
    Endpoint(
        "get_payment", "GET", f"{_ORDER}/payments/{{cf_payment_id}}", get_payment, _limit("get_payment", 60)
    ),
    Endpoint(
        "create_refund", "POST", f"{_ORDER}/refunds", create_refund, _limit("create_refund", 30), write=True
    ),
    Endpoint("list_refunds", "GET", f"{_ORDER}/refunds", list_refunds, _limit("list_refunds", 60)),
    Endpoint("get_refund", "GET", f"{_ORDER}/refunds/{{refund_id}}", get_refund, _limit("get_refund", 60)),
    Endpoint("order_settlement", "GET", f"{_ORDER}/settlements", order_settlement, _limit("settlements", 20)),
    Endpoint("all_settlements", "POST", "/pg/settlements", all_settlements, _limit("settlements", 20)),
    Endpoint("settlement_recon", "POST", "/pg/settlement/recon", settlement_recon, _limit("recon", 20)),
    Endpoint("recon", "POST", "/pg/recon", recon, _limit("recon", 20)),
    Endpoint("simulate", "POST", "/pg/simulate", simulate, _limit("simulate", 60), write=True),
    Endpoint("get_simulation", "GET", "/pg/simulate/{simulation_id}", get_simulation, _limit("simulate", 60)),
)


def add_pg_routes(app: web.Application) -> None:
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, endpoint.handler, name=endpoint.name)

"""The control API under ``/_sandbox/`` (no credentials): faults, the clock, settlements, webhooks.

| Method and path | Body | Answer |
|---|---|---|
| ``GET /_sandbox/faults`` | | the settings and the ``queued`` answers |
| ``PUT /_sandbox/faults`` | ``FaultSettings`` (keys left out take their defaults) | the same as GET |
| ``DELETE /_sandbox/faults`` | | every fault off, queue emptied |
| ``POST /_sandbox/faults/next`` | ``{"statuses": [500, 429, {"status": 503, "apply": true}]}`` | as GET |
| ``GET /_sandbox/clock`` | | ``{now, epoch_ms, clock_speed, advanced_seconds}`` |
| ``POST /_sandbox/clock/advance`` | ``{"seconds": N}`` (N ≥ 0) | as GET, after due work ran |
| ``POST /_sandbox/settle`` | ``{"order_id": …}``, or ``{}`` for all PAID orders | batch and rows |
| ``GET /_sandbox/webhooks`` | | ``{"deliveries": [...]}`` with every attempt |
| ``POST /_sandbox/webhooks/release`` | | ``{"released": n}`` |
| ``GET /_sandbox/payments/{cf_payment_id}`` | | the attempt (the page card and netbanking "link" to) |

Bad bodies answer 400 ``{"message", "code": "request_invalid", "type": "invalid_request_error"}``.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from payments.bridges.cashfree.sandbox.clock import cashfree_time
from payments.bridges.cashfree.sandbox.entities import payment_entity, settlement_entity
from payments.bridges.cashfree.sandbox.errors import invalid
from payments.bridges.cashfree.sandbox.faults import FaultSettings, NextFaults
from payments.bridges.cashfree.sandbox.jsonbody import loads
from payments.bridges.cashfree.sandbox.pg_middleware import json_answer
from payments.bridges.cashfree.sandbox.settlements import settle
from payments.bridges.cashfree.sandbox.state import SANDBOX_KEY, Sandbox

M = TypeVar("M", bound=BaseModel)


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: Annotated[float, Field(ge=0, le=10 * 365 * 86_400)]


class SettleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str | None = None


async def _parsed(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate(loads(raw) if raw else {})
    except (ValueError, ValidationError) as error:
        raise invalid("request_invalid", str(error)) from None


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


async def show_faults(request: web.Request) -> web.Response:
    return json_answer(_sandbox(request).faults.snapshot())


async def set_faults(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    sandbox.faults.settings = await _parsed(request, FaultSettings)
    return json_answer(sandbox.faults.snapshot())


async def clear_faults(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    sandbox.faults.reset()
    return json_answer(sandbox.faults.snapshot())


async def queue_faults(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    sandbox.faults.add(await _parsed(request, NextFaults))
    return json_answer(sandbox.faults.snapshot())


def _clock(sandbox: Sandbox) -> dict[str, object]:
    now = sandbox.now()
    return {
        "now": cashfree_time(now),
        "epoch_ms": int(now.timestamp() * 1000),
        "clock_speed": sandbox.clock.speed,
        "advanced_seconds": sandbox.clock.advanced_seconds,
    }


async def show_clock(request: web.Request) -> web.Response:
    return json_answer(_clock(_sandbox(request)))


async def advance_clock(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    sandbox.clock.advance((await _parsed(request, ClockAdvance)).seconds)
    sandbox.run_due()
    return json_answer(_clock(sandbox))


async def settle_orders(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    wanted = await _parsed(request, SettleRequest)
    batch, events = settle(sandbox.ledger, wanted.order_id, sandbox.now())
    sandbox.publish(events)
    if batch is None:
        return json_answer({"settlement": None, "settlements": []})
    shares = [settlement_entity(sandbox.ledger.settlements[order_id]) for order_id in batch.order_ids]
    summary = {
        "cf_settlement_id": batch.cf_settlement_id,
        "settlement_id": batch.settlement_id,
        "transfer_utr": batch.utr,
        "transfer_time": cashfree_time(batch.transfer_time),
    }
    return json_answer({"settlement": summary, "settlements": shares})


async def list_webhooks(request: web.Request) -> web.Response:
    deliveries = _sandbox(request).outbox.deliveries
    return json_answer({"deliveries": [delivery.listing() for delivery in deliveries]})


async def release_webhooks(request: web.Request) -> web.Response:
    sandbox = _sandbox(request)
    return json_answer({"released": sandbox.outbox.release(sandbox.now())})


async def show_payment(request: web.Request) -> web.Response:
    ledger = _sandbox(request).ledger
    attempt = ledger.attempt(request.match_info["cf_payment_id"])
    return json_answer(payment_entity(ledger.orders[attempt.order_id], attempt))


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_sandbox/faults", show_faults)
    app.router.add_put("/_sandbox/faults", set_faults)
    app.router.add_delete("/_sandbox/faults", clear_faults)
    app.router.add_post("/_sandbox/faults/next", queue_faults)
    app.router.add_get("/_sandbox/clock", show_clock)
    app.router.add_post("/_sandbox/clock/advance", advance_clock)
    app.router.add_post("/_sandbox/settle", settle_orders)
    app.router.add_get("/_sandbox/webhooks", list_webhooks)
    app.router.add_post("/_sandbox/webhooks/release", release_webhooks)
    app.router.add_get("/_sandbox/payments/{cf_payment_id}", show_payment)

"""The refund routes (issue 6 §2), built like the payment routes (``web/payments.py``).

``POST /api/v1/refunds/initiate`` validates the body, checks that the payment is the caller's (or the
caller an admin) before anything is sent, then sends ``command.refund.initiate`` over
``command.exchange`` to the refunds agent and waits for the reply: 201 with the refund, the agent's
error, or 202 with a status URL past the wait. It takes an ``Idempotency-Key`` with the payment
writes' semantics (``web/idempotency.py``), and the refund id derives from it, so a retried initiate
can only find the refund it made before. Reads go to the database: one refund through
``RefundService.find`` and a payment's refunds with its balances (owner or admin; anyone else 404).

``refund_routes`` stores its dependencies under its own keys (``REFUND_SERVICE_KEY``,
``REFUND_PAYMENTS_KEY``, ``REFUND_COMMAND_BUS_KEY``, ``REFUND_IDEMPOTENCY_KEY``,
``REFUND_UNIT_OF_WORK_KEY``), then adds the routes.
"""

from __future__ import annotations

import uuid
from typing import Final

from aiohttp import hdrs, web

from payments.domain.idempotency import IdempotencyStore
from payments.domain.payment.service import PaymentService
from payments.domain.refund.commands import REFUND_COMMANDS, RequestRefund
from payments.domain.refund.ids import refund_id_for
from payments.domain.refund.service import RefundService
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.web.app import RouteSetup
from payments.web.auth import principal_of
from payments.web.commands import CommandBus
from payments.web.idempotency import client_key, fingerprint, run_idempotently, scoped_key
from payments.web.keys import (
    REFUND_COMMAND_BUS_KEY,
    REFUND_IDEMPOTENCY_KEY,
    REFUND_PAYMENTS_KEY,
    REFUND_SERVICE_KEY,
    REFUND_UNIT_OF_WORK_KEY,
    SETTINGS_KEY,
)
from payments.web.payment_requests import read_json
from payments.web.payments import actor_for, reply_error_response
from payments.web.refund_requests import parse_initiate, refund_money
from payments.web.refund_views import accepted_refund_json, payment_refunds_json, refund_json, refund_url

#: Routing key of the refund command on ``command.exchange``.
INITIATE_COMMAND: Final = "command.refund.initiate"
#: Route name of the initiate; also the scope of its Idempotency-Keys.
INITIATE_ROUTE: Final = "refunds.initiate"
#: A path segment that can be one of our ids; anything else is 404 before any read.
_ID_SEGMENT: Final = "[A-Za-z0-9_-]{1,64}"


def setup_refund_routes(app: web.Application) -> None:
    """Add the refund routes; the app must hold the values under the keys named above."""
    router = app.router
    router.add_post("/api/v1/refunds/initiate", initiate_refund, name=INITIATE_ROUTE)
    router.add_get(
        f"/api/v1/refunds/payment/{{paymentId:{_ID_SEGMENT}}}", payment_refunds, name="refunds.for_payment"
    )
    router.add_get(f"/api/v1/refunds/{{refundId:{_ID_SEGMENT}}}", get_refund, name="refunds.get")


def refund_routes(
    *,
    service: RefundService,
    payments: PaymentService,
    commands: CommandBus,
    idempotency: IdempotencyStore,
    unit_of_work: UnitOfWorkFactory,
) -> RouteSetup:
    """A route setup for ``create_app(extra_setups=...)`` that stores the dependencies, then adds routes."""

    def setup(app: web.Application) -> None:
        app[REFUND_SERVICE_KEY] = service
        app[REFUND_PAYMENTS_KEY] = payments
        app[REFUND_COMMAND_BUS_KEY] = commands
        app[REFUND_IDEMPOTENCY_KEY] = idempotency
        app[REFUND_UNIT_OF_WORK_KEY] = unit_of_work
        setup_refund_routes(app)

    return setup


async def initiate_refund(request: web.Request) -> web.Response:
    """``POST /api/v1/refunds/initiate``: 201 with the refund, or 202 if its reply is late."""
    principal = principal_of(request)
    key = client_key(request)
    body = await read_json(request)
    valid = parse_initiate(body, request.config_dict[SETTINGS_KEY].payments)
    actor = actor_for(request, principal)
    # Ownership first, so nothing is sent (or stored) for a payment the caller may not see.
    payment = await request.config_dict[REFUND_PAYMENTS_KEY].find(actor, payment_id=valid.payment_id)
    command = RequestRefund(
        refund_id=refund_id_for(principal.user_id, payment.payment_id, key),
        payment_id=payment.payment_id,
        amount=refund_money(valid.amount, payment.amount.currency),
        reason=valid.reason,
        speed=valid.refund_speed,
        idempotency_key=key,
        actor=actor,
    )

    async def work() -> web.Response:
        return await _send(request, command)

    return await run_idempotently(
        request.config_dict[REFUND_IDEMPOTENCY_KEY],
        key=scoped_key(principal.user_id, INITIATE_ROUTE, key),
        fingerprint=fingerprint(request.method, request.path, body),
        work=work,
    )


async def get_refund(request: web.Request) -> web.Response:
    """``GET /api/v1/refunds/{refundId}``."""
    actor = actor_for(request, principal_of(request))
    refund = await request.config_dict[REFUND_SERVICE_KEY].find(actor, request.match_info["refundId"])
    return web.json_response(refund_json(refund))


async def payment_refunds(request: web.Request) -> web.Response:
    """``GET /api/v1/refunds/payment/{paymentId}``: the refunds, what went back, what is left."""
    actor = actor_for(request, principal_of(request))
    app = request.config_dict
    payment = await app[REFUND_PAYMENTS_KEY].find(actor, payment_id=request.match_info["paymentId"])
    async with app[REFUND_UNIT_OF_WORK_KEY]() as uow:
        refunds = await uow.refunds.for_payment(payment.payment_id)
    return web.json_response(payment_refunds_json(payment, refunds))


async def _send(request: web.Request, command: RequestRefund) -> web.Response:
    """Send the command and answer from its reply: the refund, the agent's error, or 202 if none came."""
    app = request.config_dict
    reply = await app[REFUND_COMMAND_BUS_KEY].request(
        INITIATE_COMMAND,
        REFUND_COMMANDS.dump_json(command),
        # Fresh per send: the RPC client pairs replies by it; the refund id keeps the effect single.
        message_id=f"cmd_{uuid.uuid4().hex}",
        wait_seconds=app[SETTINGS_KEY].web.command_reply_timeout_seconds,
    )
    if reply is None:
        accepted = accepted_refund_json(command.refund_id, command.payment_id)
        return web.json_response(accepted, status=202, headers={hdrs.LOCATION: refund_url(command.refund_id)})
    if reply.error is not None:
        return reply_error_response(reply.error)
    refund = await app[REFUND_SERVICE_KEY].find(command.actor, command.refund_id)
    return web.json_response(refund_json(refund), status=201)

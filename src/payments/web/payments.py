"""The payment routes (DESIGN §7, issue 4 §3).

Writes (create, verify) are validated here, then travel as commands over ``command.exchange`` to the
payments agent; the handler waits for the reply up to ``COMMAND_REPLY_TIMEOUT_SECONDS`` and answers
202 with a status URL past it. Both writes take an ``Idempotency-Key`` (``web/idempotency.py``), and a
create's payment and order ids derive from it, so a retried create can only find the payment it made
before. Reads go to the database through ``PaymentService.find`` (owner or admin; anyone else gets
404) and, for the history and the invoice PDF, the unit of work's repositories.

The routes need four values on the app under these keys (``payment_routes`` sets them and adds the
routes): ``PAYMENT_SERVICE_KEY``, ``COMMAND_BUS_KEY``, ``IDEMPOTENCY_STORE_KEY``, ``UNIT_OF_WORK_KEY``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from aiohttp import hdrs, web

from payments.domain.idempotency import IdempotencyStore
from payments.domain.invoice.model import InvoiceNotFound
from payments.domain.money import Money
from payments.domain.payment.commands import PAYMENT_COMMANDS, Actor, CreatePayment, VerifyPayment
from payments.domain.payment.ids import order_id_for, payment_id_for
from payments.domain.payment.model import CustomerDetails, Payment
from payments.domain.payment.service import PaymentService
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.pipeline.logging import mask_text
from payments.web.auth import Principal, principal_of
from payments.web.client_ip import client_ip
from payments.web.commands import CommandBus
from payments.web.idempotency import client_key, fingerprint, run_idempotently, scoped_key
from payments.web.keys import (
    COMMAND_BUS_KEY,
    IDEMPOTENCY_STORE_KEY,
    PAYMENT_SERVICE_KEY,
    SETTINGS_KEY,
    TRACE_KEY,
    UNIT_OF_WORK_KEY,
)
from payments.web.middlewares import error_response
from payments.web.payment_history import encode_cursor, history_query
from payments.web.payment_requests import (
    DEVICE_FINGERPRINT_HEADER,
    CreatePaymentBody,
    parse_create,
    parse_device_fingerprint,
    parse_verify,
    read_json,
)
from payments.web.payment_views import accepted_json, payment_json, payment_url, status_json
from payments.web.webhooks import CASHFREE_WEBHOOK_PATH

#: Routing keys of the payment commands on ``command.exchange``.
CREATE_COMMAND: Final = "command.payment.create"
VERIFY_COMMAND: Final = "command.payment.verify"
#: Route names; each write's name is also the scope of its Idempotency-Keys.
CREATE_ROUTE: Final = "payments.create"
VERIFY_ROUTE: Final = "payments.verify"
#: Where Cashfree sends this service the webhooks of an order.
#: A path segment that can be one of our ids; anything else is 404 before any read.
_ID_SEGMENT: Final = "[A-Za-z0-9_-]{1,64}"
#: Error codes an agent's reply may carry to the client.
_REPLY_CODE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
#: What a client reads when a command failed on our side; the agent's own text may name hosts.
_SERVER_ERROR_MESSAGE: Final = "The payment service could not complete the request; try again."
#: Audit rows keep this much of a User-Agent.
_MAX_USER_AGENT: Final = 512


def setup_payment_routes(app: web.Application) -> None:
    """Add the payment routes; the app must hold the values under the four keys named above."""
    router = app.router
    router.add_post("/api/v1/payments/create", create_payment, name=CREATE_ROUTE)
    router.add_post("/api/v1/payments/verify", verify_payment, name=VERIFY_ROUTE)
    # The fixed paths come before {paymentId}, which would otherwise also match "history".
    router.add_get("/api/v1/payments/history", payment_history, name="payments.history")
    router.add_get(
        f"/api/v1/payments/status/{{orderId:{_ID_SEGMENT}}}", payment_status, name="payments.status"
    )
    router.add_get(f"/api/v1/payments/{{paymentId:{_ID_SEGMENT}}}", get_payment, name="payments.get")
    router.add_get(
        f"/api/v1/payments/{{paymentId:{_ID_SEGMENT}}}/invoice", payment_invoice, name="payments.invoice"
    )


def payment_routes(
    *,
    service: PaymentService,
    commands: CommandBus,
    idempotency: IdempotencyStore,
    unit_of_work: UnitOfWorkFactory,
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)`` that stores the dependencies, then adds routes."""

    def setup(app: web.Application) -> None:
        app[PAYMENT_SERVICE_KEY] = service
        app[COMMAND_BUS_KEY] = commands
        app[IDEMPOTENCY_STORE_KEY] = idempotency
        app[UNIT_OF_WORK_KEY] = unit_of_work
        setup_payment_routes(app)

    return setup


async def create_payment(request: web.Request) -> web.Response:
    """``POST /api/v1/payments/create``: 201 with the payment, or 202 if its reply is late."""
    principal = principal_of(request)
    key = client_key(request)
    body = await read_json(request)
    valid = parse_create(body, request.config_dict[SETTINGS_KEY].payments)
    request_hash = fingerprint(request.method, request.path, body)
    command = _create_command(request, principal, valid, key=key, request_hash=request_hash)

    async def work() -> web.Response:
        return await _send(request, CREATE_COMMAND, command, command.payment_id, command.order_id, status=201)

    return await run_idempotently(
        request.config_dict[IDEMPOTENCY_STORE_KEY],
        key=scoped_key(principal.user_id, CREATE_ROUTE, key),
        fingerprint=request_hash,
        work=work,
    )


async def verify_payment(request: web.Request) -> web.Response:
    """``POST /api/v1/payments/verify``: 200 with the payment as the gateway says it is now."""
    principal = principal_of(request)
    key = client_key(request)
    body = await read_json(request)
    valid = parse_verify(body, request.config_dict[SETTINGS_KEY].payments)
    actor = actor_for(request, principal)
    # Ownership first, so nothing is sent (or stored) for a payment the caller may not see.
    payment = await request.config_dict[PAYMENT_SERVICE_KEY].find(
        actor, payment_id=valid.payment_id, order_id=valid.order_id
    )
    command = VerifyPayment(payment_id=payment.payment_id, actor=actor)

    async def work() -> web.Response:
        return await _send(request, VERIFY_COMMAND, command, payment.payment_id, payment.order_id, status=200)

    return await run_idempotently(
        request.config_dict[IDEMPOTENCY_STORE_KEY],
        key=scoped_key(principal.user_id, VERIFY_ROUTE, key),
        fingerprint=fingerprint(request.method, request.path, body),
        work=work,
    )


async def get_payment(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/{paymentId}``."""
    payment = await _find(request, payment_id=request.match_info["paymentId"])
    return web.json_response(payment_json(payment))


async def payment_status(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/status/{orderId}``: the short status view."""
    payment = await _find(request, order_id=request.match_info["orderId"])
    return web.json_response(status_json(payment))


async def payment_invoice(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/{paymentId}/invoice``: the invoice PDF, once the payment has one."""
    payment = await _find(request, payment_id=request.match_info["paymentId"])
    async with request.config_dict[UNIT_OF_WORK_KEY]() as uow:
        invoice = await uow.invoices.for_payment(payment.payment_id)
        if invoice is None:
            raise InvoiceNotFound(f"payment {payment.payment_id} has no invoice yet")
        pdf = await uow.invoices.document(invoice.invoice_id)
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={
            # The number is [A-Z0-9-] only, so it needs no quoting rules beyond the quotes.
            hdrs.CONTENT_DISPOSITION: f'attachment; filename="{invoice.number}.pdf"',
            # A customer's document: no shared cache may keep it, and no browser cache either.
            hdrs.CACHE_CONTROL: "private, no-store",
        },
    )


async def payment_history(request: web.Request) -> web.Response:
    """``GET /api/v1/payments/history``: newest first, one page, and the cursor of the next."""
    query = history_query(principal_of(request), request.query)
    async with request.config_dict[UNIT_OF_WORK_KEY]() as uow:
        # One row more than the page tells whether another page follows.
        rows = await uow.payments.history(replace(query, limit=query.limit + 1))
    page = list(rows[: query.limit])
    next_cursor = encode_cursor(page[-1]) if len(rows) > query.limit else None
    return web.json_response({"payments": [payment_json(p) for p in page], "nextCursor": next_cursor})


def actor_for(request: web.Request, principal: Principal) -> Actor:
    """Who asks, from where, under which trace: what the audit log records of this request."""
    trace = request[TRACE_KEY]
    user_agent = request.headers.get(hdrs.USER_AGENT)
    return Actor(
        actor_id=principal.user_id,
        ip_address=client_ip(request),
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        trace_id=trace.trace_id,
        request_id=trace.request_id,
        is_admin=principal.is_admin,
    )


async def _find(
    request: web.Request, *, payment_id: str | None = None, order_id: str | None = None
) -> Payment:
    actor = actor_for(request, principal_of(request))
    service = request.config_dict[PAYMENT_SERVICE_KEY]
    return await service.find(actor, payment_id=payment_id, order_id=order_id)


def _create_command(
    request: web.Request, principal: Principal, valid: CreatePaymentBody, *, key: str, request_hash: str
) -> CreatePayment:
    payment_id = payment_id_for(principal.user_id, key)
    customer = valid.customer
    device = parse_device_fingerprint(request.headers.get(DEVICE_FINGERPRINT_HEADER))
    return CreatePayment(
        payment_id=payment_id,
        order_id=order_id_for(payment_id),
        user_id=principal.user_id,
        amount=Money(valid.amount, valid.currency),
        customer=CustomerDetails(name=customer.name, email=customer.email, phone=customer.phone),
        description=valid.description,
        metadata=valid.metadata or {},
        return_url=valid.return_url,
        notify_url=request.config_dict[SETTINGS_KEY].web.public_base_url + CASHFREE_WEBHOOK_PATH,
        idempotency_key=key,
        request_hash=request_hash,
        device_fingerprint=device,
        actor=actor_for(request, principal),
    )


async def _send(
    request: web.Request,
    routing_key: str,
    command: CreatePayment | VerifyPayment,
    payment_id: str,
    order_id: str,
    *,
    status: int,
) -> web.Response:
    """Send the command and answer from its reply: the payment, the agent's error, or 202 if none came."""
    app = request.config_dict
    reply = await app[COMMAND_BUS_KEY].request(
        routing_key,
        PAYMENT_COMMANDS.dump_json(command),
        # Fresh per send: the RPC client pairs replies by it; the command's effects are idempotent anyway.
        message_id=f"cmd_{uuid.uuid4().hex}",
        wait_seconds=app[SETTINGS_KEY].web.command_reply_timeout_seconds,
    )
    if reply is None:
        accepted = accepted_json(payment_id, order_id)
        return web.json_response(accepted, status=202, headers={hdrs.LOCATION: payment_url(payment_id)})
    if reply.error is not None:
        return reply_error_response(reply.error)
    payment = await app[PAYMENT_SERVICE_KEY].find(command.actor, payment_id=payment_id)
    return web.json_response(payment_json(payment), status=status)


def reply_error_response(error: Mapping[str, Any]) -> web.Response:
    """The agent's ``{"code", "message", "status"}`` as the one error body; untrusted parts replaced."""
    status = error.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status < 600:
        status = 500
    code = error.get("code")
    if not isinstance(code, str) or _REPLY_CODE.fullmatch(code) is None:
        code = "internal_error"
    message = error.get("message")
    if status >= 500 or not isinstance(message, str) or not message:
        message = _SERVER_ERROR_MESSAGE
    return error_response(status, code, mask_text(message)[:500])

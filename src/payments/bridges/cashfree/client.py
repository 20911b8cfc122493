"""Cashfree's PG API as typed coroutines: orders, Order Pay, payments, refunds, settlements, recon.

Each method builds one call (route, body, idempotency key) and reads the answer into the lenient
models; ``transport.py`` sends it, retries it and maps errors. Paginated reports are followed to
their last page. The client speaks Cashfree's terms; ``gateway.py`` turns them into the domain's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from payments.bridges.cashfree import wire
from payments.bridges.cashfree.errors import IdempotencyKeyReused, OrderAlreadyExists, UnreadableResponse
from payments.bridges.cashfree.models import (
    CreateOrderRequest,
    CreateRefundRequest,
    FetchReconRequest,
    FetchSettlementsRequest,
    OrderEntity,
    OrderPayRequest,
    Pagination,
    PaymentEntity,
    PayOrderEntity,
    ReconFilters,
    ReconPage,
    ReconRow,
    RefundEntity,
    SettlementEntity,
    SettlementFilters,
    SettlementReconPage,
    SettlementReconRow,
    SettlementsPage,
    TerminateOrderRequest,
)
from payments.bridges.cashfree.transport import (
    DEFAULT_API_VERSION,
    Call,
    SentRequest,
    Transport,
    idempotency_key,
    read_many,
    read_one,
)
from payments.domain.errors import GatewayConflict, ValidationFailed

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_PAGE_SIZE", "CashfreeClient", "SentRequest", "idempotency_key"]

#: Pages of settlements and reconciliation rows; SPEC allows up to 1000.
DEFAULT_PAGE_SIZE: Final = 100

T = TypeVar("T")


class CashfreeClient:
    """Cashfree PG calls as typed coroutines. Use as ``async with CashfreeClient(...) as client:``.

    ``timeout_seconds`` bounds each HTTP try; ``max_retries`` counts tries after the first. ``sleep``
    waits between retries (tests pass a recorder); ``request_id`` returns the id of the work in
    progress (the composition root passes one that reads the trace context); ``on_request`` sees every
    request sent, secret masked, for contract tests.
    """

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        secret_key: str,
        api_version: str = DEFAULT_API_VERSION,
        timeout_seconds: float = 15.0,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_id: Callable[[], str] | None = None,
        on_request: Callable[[SentRequest], None] | None = None,
    ) -> None:
        self._transport = Transport(
            base_url=base_url,
            app_id=app_id,
            secret_key=secret_key,
            api_version=api_version,
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            sleep=sleep,
            request_id=request_id,
            on_request=on_request,
        )
        self._app_id = app_id

    def __repr__(self) -> str:
        return f"CashfreeClient(base_url={self._transport.base_url!r}, app_id={self._app_id!r})"

    async def __aenter__(self) -> Self:
        await self._transport.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session; calls made afterwards raise ``RuntimeError``."""
        await self._transport.aclose()

    # -- orders ---------------------------------------------------------------------------------------

    async def create_order(self, request: CreateOrderRequest) -> OrderEntity:
        """Create the order, or return the one Cashfree already holds under our id if it matches.

        A 409 ``order_already_exists`` can follow our own earlier create that succeeded unseen
        (FACTS §1), and the same order id with another body reuses its idempotency key (422). Either
        way the order is fetched: the same amount and currency is success, anything else a conflict.
        """
        key = idempotency_key(f"order:{request.order_id}")
        call = Call("POST", "/orders", "/orders", wire.dumps(request), key)
        try:
            return read_one(OrderEntity, await self._transport.send(call), call)
        except (OrderAlreadyExists, IdempotencyKeyReused):
            logger.info("Cashfree already holds order %s; comparing it with ours", request.order_id)
        existing = await self.get_order(request.order_id)
        if (existing.order_amount, existing.order_currency) == (request.order_amount, request.order_currency):
            return existing
        raise GatewayConflict(
            f"Cashfree holds order {request.order_id} for {existing.order_amount} {existing.order_currency},"
            f" not {request.order_amount} {request.order_currency}"
        )

    async def get_order(self, order_id: str) -> OrderEntity:
        """The order as Cashfree holds it now (``GET /orders/{order_id}``); ``NotFound`` if unknown."""
        call = Call("GET", "/orders/{order_id}", f"/orders/{_segment(order_id)}")
        return read_one(OrderEntity, await self._transport.send(call), call)

    async def terminate_order(self, order_id: str) -> OrderEntity:
        """Ask Cashfree to terminate an unpaid order; it may answer TERMINATION_REQUESTED first."""
        body = wire.dumps(TerminateOrderRequest())
        key = idempotency_key(f"terminate:{order_id}")
        call = Call("PATCH", "/orders/{order_id}", f"/orders/{_segment(order_id)}", body, key)
        return read_one(OrderEntity, await self._transport.send(call), call)

    async def pay_order(self, request: OrderPayRequest, *, attempt_key: str) -> PayOrderEntity:
        """Order Pay: start a payment attempt on the order behind ``payment_session_id``.

        ``attempt_key`` is our name for this attempt: retries reuse it, a new attempt needs a new one.
        """
        key = idempotency_key(f"pay:{attempt_key}")
        body = wire.dumps(request)
        call = Call("POST", "/orders/sessions", "/orders/sessions", body, key, authenticated=False)
        return read_one(PayOrderEntity, await self._transport.send(call), call)

    # -- payments and refunds -------------------------------------------------------------------------

    async def list_payments(self, order_id: str) -> list[PaymentEntity]:
        """Every attempt on the order (Cashfree answers with a bare JSON array)."""
        call = Call("GET", "/orders/{order_id}/payments", f"/orders/{_segment(order_id)}/payments")
        return read_many(PaymentEntity, await self._transport.send(call), call)

    async def get_payment(self, order_id: str, cf_payment_id: str) -> PaymentEntity:
        """One attempt on the order, by Cashfree's ``cf_payment_id``."""
        path = f"/orders/{_segment(order_id)}/payments/{_segment(cf_payment_id)}"
        call = Call("GET", "/orders/{order_id}/payments/{cf_payment_id}", path)
        return read_one(PaymentEntity, await self._transport.send(call), call)

    async def create_refund(self, order_id: str, request: CreateRefundRequest) -> RefundEntity:
        """Ask for a refund; ``refund_id`` is ours, and repeating the call is safe."""
        key = idempotency_key(f"refund:{order_id}:{request.refund_id}")
        path = f"/orders/{_segment(order_id)}/refunds"
        call = Call("POST", "/orders/{order_id}/refunds", path, wire.dumps(request), key)
        return read_one(RefundEntity, await self._transport.send(call), call)

    async def list_refunds(self, order_id: str) -> list[RefundEntity]:
        """Every refund of the order (a bare JSON array)."""
        call = Call("GET", "/orders/{order_id}/refunds", f"/orders/{_segment(order_id)}/refunds")
        return read_many(RefundEntity, await self._transport.send(call), call)

    async def get_refund(self, order_id: str, refund_id: str) -> RefundEntity:
        """One refund of the order, by our ``refund_id``."""
        path = f"/orders/{_segment(order_id)}/refunds/{_segment(refund_id)}"
        call = Call("GET", "/orders/{order_id}/refunds/{refund_id}", path)
        return read_one(RefundEntity, await self._transport.send(call), call)

    # -- settlements and reconciliation ---------------------------------------------------------------

    async def order_settlements(self, order_id: str) -> list[SettlementEntity]:
        """The settlement of one order (SPEC: one entity; a list or a page is read as well)."""
        path = f"/orders/{_segment(order_id)}/settlements"
        call = Call("GET", "/orders/{order_id}/settlements", path)
        return _settlements_page(await self._transport.send(call), call)[0]

    async def settlements(
        self, start: datetime, end: datetime, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> list[SettlementEntity]:
        """Every settlement from ``start`` to ``end``, all pages followed (``POST /settlements``)."""
        filters = SettlementFilters(start_date=_date_text(start), end_date=_date_text(end))

        def body(cursor: str | None) -> BaseModel:
            return FetchSettlementsRequest(
                pagination=Pagination(limit=page_size, cursor=cursor), filters=filters
            )

        return await self._all_pages("/settlements", body, _settlements_page)

    async def pg_reconciliation(
        self, start: datetime, end: datetime, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> list[ReconRow]:
        """Every account event from ``start`` to ``end``, all pages followed (``POST /recon``)."""
        filters = ReconFilters(start_date=_date_text(start), end_date=_date_text(end))

        def body(cursor: str | None) -> BaseModel:
            return FetchReconRequest(pagination=Pagination(limit=page_size, cursor=cursor), filters=filters)

        return await self._all_pages("/recon", body, _recon_page)

    async def settlement_reconciliation(
        self, start: datetime, end: datetime, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> list[SettlementReconRow]:
        """Every settlement event in the range, all pages followed (``POST /settlement/recon``)."""
        filters = SettlementFilters(start_date=_date_text(start), end_date=_date_text(end))

        def body(cursor: str | None) -> BaseModel:
            return FetchSettlementsRequest(
                pagination=Pagination(limit=page_size, cursor=cursor), filters=filters
            )

        return await self._all_pages("/settlement/recon", body, _settlement_recon_page)

    async def _all_pages(
        self,
        path: str,
        body: Callable[[str | None], BaseModel],
        read: Callable[[Any, Call], tuple[list[T], str | None]],
    ) -> list[T]:
        """Follow ``cursor`` until Cashfree sends none or an empty page; a repeated cursor is an error."""
        items: list[T] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            call = Call("POST", path, path, wire.dumps(body(cursor)))
            page, cursor = read(await self._transport.send(call), call)
            items.extend(page)
            if not cursor or not page:
                return items
            if cursor in seen:
                raise UnreadableResponse(f"Cashfree repeated a pagination cursor on POST {path}")
            seen.add(cursor)


def _settlements_page(document: Any, call: Call) -> tuple[list[SettlementEntity], str | None]:
    """SPEC types the answer as one SettlementEntity; a list or ``{cursor, limit, data}`` is read too."""
    if isinstance(document, list):
        return read_many(SettlementEntity, document, call), None
    if isinstance(document, dict) and ("data" in document or "cursor" in document):
        page = read_one(SettlementsPage, document, call)
        return list(page.data or []), page.cursor
    entity = read_one(SettlementEntity, document, call)
    return ([entity] if entity.cf_settlement_id or entity.settlement_id else []), None


def _recon_page(document: Any, call: Call) -> tuple[list[ReconRow], str | None]:
    page = read_one(ReconPage, document, call)
    return list(page.data or []), page.cursor


def _settlement_recon_page(document: Any, call: Call) -> tuple[list[SettlementReconRow], str | None]:
    page = read_one(SettlementReconPage, document, call)
    return list(page.data or []), page.cursor


def _segment(value: str) -> str:
    """One URL path segment: our ids are plain, but an id from elsewhere must not add a path level."""
    return quote(value, safe="")


def _date_text(moment: datetime) -> str:
    """SPEC's filter format, ``2022-07-20T00:00:00Z``, from a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValidationFailed("settlement and reconciliation dates need a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

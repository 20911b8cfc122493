"""``CashfreeGateway``: the domain's ``PaymentGateway`` port over ``CashfreeClient``.

Each method maps a domain request to Cashfree's wire model, calls the client, and maps the answer
back (``mapping.py``); the client's errors are already the domain's. Nothing named after Cashfree
leaves this package: callers see ``GatewayOrder``, ``GatewayAttempt``, ``Money`` and the error tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from payments.bridges.cashfree import mapping
from payments.bridges.cashfree.client import CashfreeClient
from payments.domain.errors import NotFound
from payments.domain.gateway import (
    GatewayAttempt,
    GatewayOrder,
    GatewayRefund,
    GatewaySettlement,
    OrderRequest,
    ReconciliationEntry,
    RefundRequest,
)

if TYPE_CHECKING:
    from payments.domain.gateway import PaymentGateway


class CashfreeGateway:
    """Orders, attempts, refunds, settlements and reconciliation at Cashfree."""

    #: Stored with each payment; the composition root picks the gateway by it.
    name: str = "cashfree"

    def __init__(self, client: CashfreeClient) -> None:
        self._client = client

    async def create_order(self, request: OrderRequest) -> GatewayOrder:
        """Open an order; the same order id and amount again returns the same order."""
        order = await self._client.create_order(mapping.order_request(request))
        return mapping.to_order(order)

    async def get_order(self, order_id: str) -> GatewayOrder:
        return mapping.to_order(await self._client.get_order(order_id))

    async def terminate_order(self, order_id: str) -> GatewayOrder:
        return mapping.to_order(await self._client.terminate_order(order_id))

    async def list_attempts(self, order_id: str) -> Sequence[GatewayAttempt]:
        payments = await self._client.list_payments(order_id)
        return [mapping.to_attempt(payment, order_id) for payment in payments]

    async def get_attempt(self, order_id: str, attempt_id: str) -> GatewayAttempt:
        return mapping.to_attempt(await self._client.get_payment(order_id, attempt_id), order_id)

    async def create_refund(self, request: RefundRequest) -> GatewayRefund:
        """Ask for a refund; the same refund id again is safe (one idempotency key per refund)."""
        refund = await self._client.create_refund(request.order_id, mapping.refund_request(request))
        return mapping.to_refund(refund, request.order_id)

    async def list_refunds(self, order_id: str) -> Sequence[GatewayRefund]:
        refunds = await self._client.list_refunds(order_id)
        return [mapping.to_refund(refund, order_id) for refund in refunds]

    async def get_refund(self, order_id: str, refund_id: str) -> GatewayRefund:
        return mapping.to_refund(await self._client.get_refund(order_id, refund_id), order_id)

    async def settlements_for_order(self, order_id: str) -> Sequence[GatewaySettlement]:
        """The order's settlement, or none yet (Cashfree answers 404 until it has settled)."""
        try:
            settlements = await self._client.order_settlements(order_id)
        except NotFound:
            return []
        return [mapping.to_settlement(settlement, order_id) for settlement in settlements]

    async def settlements(self, start: datetime, end: datetime) -> Sequence[GatewaySettlement]:
        """Every settlement in the range, all pages followed."""
        return [mapping.to_settlement(entity) for entity in await self._client.settlements(start, end)]

    async def reconciliation(self, start: datetime, end: datetime) -> Sequence[ReconciliationEntry]:
        """The payment-level reconciliation report for the range, all pages followed."""
        return [mapping.recon_entry(row) for row in await self._client.pg_reconciliation(start, end)]

    async def settlement_reconciliation(
        self, start: datetime, end: datetime
    ) -> Sequence[ReconciliationEntry]:
        """The settlement-level reconciliation report for the range, all pages followed."""
        rows = await self._client.settlement_reconciliation(start, end)
        return [mapping.settlement_recon_entry(row) for row in rows]


if TYPE_CHECKING:
    # mypy proves here, on every run, that the class satisfies the port.
    def _satisfies_the_port(gateway: CashfreeGateway) -> PaymentGateway:
        return gateway

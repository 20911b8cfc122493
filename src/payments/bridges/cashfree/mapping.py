"""Between the domain's gateway types and Cashfree's wire models, both ways; pure functions.

Outbound, a domain request becomes a strict Cashfree request; one that breaks Cashfree's rules is
refused here (``InvalidGatewayRequest``) and never sent. Inbound, statuses go through explicit tables,
and a status missing from a table becomes ``UNKNOWN`` rather than a guess. An answer without what the
domain cannot do without (an id, an amount, a currency) raises ``UnreadableResponse``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Final, TypeVar

from pydantic import ValidationError

from payments.bridges.cashfree.errors import InvalidGatewayRequest, UnreadableResponse
from payments.bridges.cashfree.models import (
    CreateOrderRequest,
    CreateRefundRequest,
    OrderEntity,
    PaymentEntity,
    ReconEventDetails,
    ReconOrderDetails,
    ReconPaymentDetails,
    ReconRefundDetails,
    ReconRow,
    ReconSettlementDetails,
    RefundEntity,
    SettlementEntity,
    SettlementReconRow,
)
from payments.domain.errors import ValidationFailed
from payments.domain.gateway import (
    AttemptStatus,
    GatewayAttempt,
    GatewayOrder,
    GatewayOrderStatus,
    GatewayRefund,
    GatewayRefundStatus,
    GatewaySettlement,
    OrderRequest,
    ReconciliationEntry,
    RefundRequest,
)
from payments.domain.money import Money

#: Cashfree writes times in IST; a time sent without an offset is read in IST too.
IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")
#: Cashfree pays out to Indian bank accounts, in rupees: the currency of a payout or report line
#: that names none.
PAYOUT_CURRENCY: Final = "INR"

ORDER_STATUSES: Final[Mapping[str, GatewayOrderStatus]] = {
    "ACTIVE": GatewayOrderStatus.ACTIVE,
    "PAID": GatewayOrderStatus.PAID,
    "EXPIRED": GatewayOrderStatus.EXPIRED,
    "TERMINATED": GatewayOrderStatus.TERMINATED,
    "TERMINATION_REQUESTED": GatewayOrderStatus.TERMINATION_REQUESTED,
}
ATTEMPT_STATUSES: Final[Mapping[str, AttemptStatus]] = {
    "SUCCESS": AttemptStatus.SUCCESS,
    "FAILED": AttemptStatus.FAILED,
    "PENDING": AttemptStatus.PENDING,
    "NOT_ATTEMPTED": AttemptStatus.NOT_ATTEMPTED,
    "USER_DROPPED": AttemptStatus.USER_DROPPED,
    "VOID": AttemptStatus.VOID,
    "CANCELLED": AttemptStatus.CANCELLED,
}
REFUND_STATUSES: Final[Mapping[str, GatewayRefundStatus]] = {
    "PENDING": GatewayRefundStatus.PENDING,
    "SUCCESS": GatewayRefundStatus.SUCCESS,
    "CANCELLED": GatewayRefundStatus.CANCELLED,
    "ONHOLD": GatewayRefundStatus.ONHOLD,
    # Listed in the field's description though not in SPEC's enum (FACTS §5).
    "FAILED": GatewayRefundStatus.FAILED,
}

R = TypeVar("R")


# -- outbound ---------------------------------------------------------------------------------------


def order_request(request: OrderRequest) -> CreateOrderRequest:
    """The Create Order body for ``request``, or ``InvalidGatewayRequest`` naming the broken fields."""
    customer = request.customer
    # Validated from one document, so a broken field is named by its full path (customer_details.…).
    document = {
        "order_id": request.order_id,
        "order_amount": request.amount.amount,
        "order_currency": request.amount.currency,
        "customer_details": {
            "customer_id": customer.customer_id,
            "customer_phone": customer.phone,
            "customer_email": customer.email,
            "customer_name": customer.name,
        },
        "order_meta": _order_meta(request),
        "order_expiry_time": request.expires_at,
        "order_note": request.note,
        "order_tags": dict(request.tags) or None,
    }
    return _checked(lambda: CreateOrderRequest.model_validate(document))


def refund_request(request: RefundRequest) -> CreateRefundRequest:
    """The Create Refund body for ``request`` (Cashfree refunds in the order's currency)."""
    return _checked(
        lambda: CreateRefundRequest(
            refund_id=request.refund_id,
            refund_amount=request.amount.amount,
            refund_note=request.note,
            refund_speed=request.speed.value,
        )
    )


def _order_meta(request: OrderRequest) -> dict[str, str | None] | None:
    if request.return_url is None and request.notify_url is None:
        return None
    return {"return_url": request.return_url, "notify_url": request.notify_url}


def _checked(build: Callable[[], R]) -> R:
    try:
        return build()
    except ValidationError as error:
        # Field paths and pydantic's wording only: the values may be personal data.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors(include_input=False, include_url=False)
        )
    raise InvalidGatewayRequest(f"not sent to Cashfree: {problems}")


# -- inbound ----------------------------------------------------------------------------------------


def to_order(entity: OrderEntity) -> GatewayOrder:
    return GatewayOrder(
        order_id=_required(entity.order_id, "order", "order_id"),
        gateway_order_id=_required(entity.cf_order_id, "order", "cf_order_id"),
        amount=_money(entity.order_amount, entity.order_currency, "order"),
        status=ORDER_STATUSES.get(entity.order_status or "", GatewayOrderStatus.UNKNOWN),
        session_id=entity.payment_session_id,
        created_at=parse_time(entity.created_at),
        expires_at=parse_time(entity.order_expiry_time),
    )


def to_attempt(entity: PaymentEntity, order_id: str) -> GatewayAttempt:
    """One payment attempt; ``order_id`` is the order we asked about, for answers that omit it."""
    error = entity.error_details
    return GatewayAttempt(
        attempt_id=_required(entity.cf_payment_id, "payment", "cf_payment_id"),
        order_id=entity.order_id or order_id,
        amount=_money(entity.payment_amount, entity.payment_currency or entity.order_currency, "payment"),
        status=ATTEMPT_STATUSES.get(entity.payment_status or "", AttemptStatus.UNKNOWN),
        method=entity.payment_group or next(iter(entity.payment_method or {}), None),
        message=entity.payment_message,
        bank_reference=entity.bank_reference,
        error_code=error.error_code if error else None,
        error_reason=error.error_reason if error else None,
        started_at=parse_time(entity.payment_time),
        completed_at=parse_time(entity.payment_completion_time),
        raw=entity.model_dump(mode="json"),
    )


def to_refund(entity: RefundEntity, order_id: str) -> GatewayRefund:
    return GatewayRefund(
        refund_id=_required(entity.refund_id, "refund", "refund_id"),
        gateway_refund_id=entity.cf_refund_id,
        order_id=entity.order_id or order_id,
        attempt_id=entity.cf_payment_id,
        amount=_money(entity.refund_amount, entity.refund_currency, "refund"),
        status=REFUND_STATUSES.get(entity.refund_status or "", GatewayRefundStatus.UNKNOWN),
        status_description=entity.status_description,
        bank_reference=entity.refund_arn,
        created_at=parse_time(entity.created_at),
        processed_at=parse_time(entity.processed_at),
    )


def to_settlement(entity: SettlementEntity, order_id: str | None = None) -> GatewaySettlement:
    payout = entity.settlement_currency or PAYOUT_CURRENCY
    fees = entity.charges_currency or payout
    return GatewaySettlement(
        settlement_id=_required(
            entity.cf_settlement_id or entity.settlement_id, "settlement", "cf_settlement_id"
        ),
        order_id=_required(entity.order_id or order_id, "settlement", "order_id"),
        attempt_id=entity.cf_payment_id,
        order_amount=_money(entity.order_amount, entity.order_currency or payout, "settlement"),
        service_charge=_money(entity.service_charge or Decimal(0), fees, "settlement"),
        service_tax=_money(entity.service_tax or Decimal(0), fees, "settlement"),
        settlement_amount=_money(entity.settlement_amount, payout, "settlement"),
        utr=entity.transfer_utr,
        paid_at=parse_time(entity.payment_time),
        settled_at=parse_time(entity.transfer_time),
    )


def recon_entry(row: ReconRow) -> ReconciliationEntry:
    """One line of the payment-level report (``POST /recon``)."""
    currency = row.event_currency or PAYOUT_CURRENCY
    return ReconciliationEntry(
        event_id=_required(row.event_id, "reconciliation row", "event_id"),
        event_type=row.event_type or "UNKNOWN",
        amount=_money(row.event_amount, currency, "reconciliation row"),
        settlement_amount=_optional_money(row.event_settlement_amount, currency, "reconciliation row"),
        status=row.event_status,
        occurred_at=parse_time(row.event_time),
        order_id=row.order_id,
        attempt_id=row.cf_payment_id,
        refund_id=row.refund_id,
        settlement_id=row.cf_settlement_id,
        utr=row.settlement_utr,
        raw=row.model_dump(mode="json"),
    )


def settlement_recon_entry(row: SettlementReconRow) -> ReconciliationEntry:
    """One line of the settlement-level report (``POST /settlement/recon``), grouped by subject."""
    event = row.event_details or ReconEventDetails()
    order = row.order_details or ReconOrderDetails()
    settlement = row.settlement_details or ReconSettlementDetails()
    currency = event.event_currency or order.order_currency or PAYOUT_CURRENCY
    return ReconciliationEntry(
        event_id=_required(event.event_id, "reconciliation row", "event_details.event_id"),
        event_type=event.event_type or "UNKNOWN",
        amount=_money(event.event_amount, currency, "reconciliation row"),
        settlement_amount=_optional_money(event.event_settlement_amount, currency, "reconciliation row"),
        status=event.event_status,
        occurred_at=parse_time(event.event_time),
        order_id=order.order_id,
        attempt_id=(row.payment_details or ReconPaymentDetails()).cf_payment_id,
        refund_id=(row.refund_details or ReconRefundDetails()).refund_id,
        settlement_id=settlement.cf_settlement_id,
        utr=settlement.utr,
        raw=row.model_dump(mode="json"),
    )


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time from Cashfree, aware (IST when it names no offset); None when absent or unreadable."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # A time we cannot read must not cost us the record; the raw record keeps the text.
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=IST)


def _required(value: str | None, what: str, field: str) -> str:
    if not value:
        raise UnreadableResponse(f"Cashfree sent a {what} without {field}")
    return value


def _money(amount: Decimal | None, currency: str | None, what: str) -> Money:
    if amount is None or not currency:
        raise UnreadableResponse(f"Cashfree sent a {what} without an amount and currency")
    try:
        return Money(amount, currency)
    except ValidationFailed as error:
        problem = str(error)
    raise UnreadableResponse(f"Cashfree sent a {what} amount we cannot use: {problem}")


def _optional_money(amount: Decimal | None, currency: str, what: str) -> Money | None:
    return None if amount is None else _money(amount, currency, what)

"""The parts of Cashfree's PG API (version 2025-01-01) that we use, as pydantic models.

Two rules, one per direction:

* Requests are strict and follow ``shared/cashfree/openapi-pg-2025-01-01.yaml``: unknown fields are
  refused, amounts must be ``Decimal`` with at most two decimals (``wire.dumps`` writes them as
  ``100.50``), and length limits are the SPEC's. A request that breaks them never leaves the process.
* Responses are lenient, because Cashfree's own samples break its SPEC (FACTS §7): ids may arrive as
  JSON numbers and are kept as strings, ``null`` may appear in any field, unknown fields are kept
  (``extra="allow"``), status values are plain strings so an unknown one survives, amounts are
  ``Decimal`` read from numbers or strings, and timestamps stay as the text Cashfree sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# ---------------------------------------------------------------------------------------------------
# Requests (outbound, strict)
# ---------------------------------------------------------------------------------------------------

#: Our order and refund ids: SPEC lengths, and only characters that need no escaping in a URL path.
OrderId = Annotated[str, Field(min_length=3, max_length=45, pattern=r"^[A-Za-z0-9_-]+$")]
RefundId = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
#: SPEC: order_amount has a minimum of 1; both amounts take at most two decimals.
OrderAmount = Annotated[Decimal, Field(ge=1, decimal_places=2, max_digits=14)]
RefundAmount = Annotated[Decimal, Field(gt=0, decimal_places=2, max_digits=14)]
TagValue = Annotated[str, Field(min_length=1, max_length=255)]
#: SPEC bounds the page size of settlement and reconciliation fetches at 1000.
PageSize = Annotated[int, Field(ge=1, le=1000)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CustomerDetails(_Request):
    customer_id: Annotated[str, Field(min_length=3, max_length=50)]
    #: SPEC: exactly 10 characters (an Indian mobile number without the country code).
    customer_phone: Annotated[str, Field(min_length=10, max_length=10)]
    customer_email: Annotated[str, Field(min_length=3, max_length=100)] | None = None
    customer_name: Annotated[str, Field(min_length=3, max_length=100)] | None = None


class OrderMeta(_Request):
    #: Where the browser goes once the attempt is final (FACTS §2: at most 250 characters).
    return_url: Annotated[str, Field(max_length=250)] | None = None
    #: Where Cashfree sends this order's webhooks, besides the dashboard's endpoints.
    notify_url: Annotated[str, Field(max_length=250)] | None = None
    #: Comma list such as ``upi,cc``; None offers every method enabled on the account.
    payment_methods: str | None = None


class CreateOrderRequest(_Request):
    """``POST /orders``. SPEC makes ``order_id`` optional; we always send ours, so retries are safe."""

    order_id: OrderId
    order_amount: OrderAmount
    order_currency: Currency
    customer_details: CustomerDetails
    order_meta: OrderMeta | None = None
    #: Written as ISO 8601 with its offset; Cashfree stores it in IST.
    order_expiry_time: AwareDatetime | None = None
    order_note: Annotated[str, Field(min_length=3, max_length=200)] | None = None
    #: SPEC: at most 15 tags, each value 1-255 characters.
    order_tags: Annotated[dict[str, TagValue], Field(max_length=15)] | None = None


class TerminateOrderRequest(_Request):
    """``PATCH /orders/{order_id}``: the only change the API allows is to terminate."""

    order_status: Literal["TERMINATED"] = "TERMINATED"


class Upi(_Request):
    channel: Literal["link", "collect", "qrcode"]
    #: Required for ``collect``; the sandbox's ``testsuccess@gocash`` succeeds at once.
    upi_id: str | None = None
    #: FACTS §3: default 5, keep within 5-15.
    upi_expiry_minutes: Annotated[int, Field(ge=5, le=15)] | None = None


class UpiPaymentMethod(_Request):
    upi: Upi


class OrderPayRequest(_Request):
    """``POST /orders/sessions`` (Order Pay). Only UPI is modelled: it is all our server-side flows use."""

    payment_session_id: Annotated[str, Field(min_length=1)]
    payment_method: UpiPaymentMethod
    save_instrument: bool | None = None
    offer_id: str | None = None


class CreateRefundRequest(_Request):
    """``POST /orders/{order_id}/refunds``; ``refund_id`` is ours and makes the call idempotent."""

    refund_id: RefundId
    refund_amount: RefundAmount
    refund_note: Annotated[str, Field(min_length=3, max_length=100)] | None = None
    refund_speed: Literal["STANDARD", "INSTANT"] | None = None


class Pagination(_Request):
    limit: PageSize
    #: Left out of the first request (SPEC types it as a string; its text says "null first").
    cursor: str | None = None


class SettlementFilters(_Request):
    cf_settlement_ids: list[str] | None = None
    settlement_utrs: list[str] | None = None
    #: ``YYYY-MM-DDTHH:MM:SSZ`` as in SPEC's examples.
    start_date: str | None = None
    end_date: str | None = None


class FetchSettlementsRequest(_Request):
    """``POST /settlements`` and ``POST /settlement/recon`` share this body (SPEC)."""

    pagination: Pagination
    filters: SettlementFilters


class ReconFilters(_Request):
    start_date: str
    end_date: str


class FetchReconRequest(_Request):
    """``POST /recon``: both dates are required."""

    pagination: Pagination
    filters: ReconFilters


# ---------------------------------------------------------------------------------------------------
# Responses (inbound, lenient)
# ---------------------------------------------------------------------------------------------------


class _Entity(BaseModel):
    # coerce_numbers_to_str: every id (and any other text field) sent as a JSON number is kept as text.
    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


class ErrorBody(_Entity):
    """Cashfree's error body: ``{"message", "code", "type", "help"}`` (FACTS §8)."""

    message: str | None = None
    code: str | None = None
    type: str | None = None
    help: str | None = None


class CustomerDetailsEntity(_Entity):
    customer_id: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    customer_uid: str | None = None


class OrderMetaEntity(_Entity):
    return_url: str | None = None
    notify_url: str | None = None
    payment_methods: Any = None


class OrderEntity(_Entity):
    cf_order_id: str | None = None
    order_id: str | None = None
    entity: str | None = None
    order_currency: str | None = None
    order_amount: Decimal | None = None
    #: ACTIVE, PAID, EXPIRED, TERMINATED, TERMINATION_REQUESTED, or something newer.
    order_status: str | None = None
    payment_session_id: str | None = None
    order_expiry_time: str | None = None
    order_note: str | None = None
    created_at: str | None = None
    order_splits: list[Any] | None = None
    customer_details: CustomerDetailsEntity | None = None
    order_meta: OrderMetaEntity | None = None
    order_tags: dict[str, Any] | None = None
    cart_details: Any = None
    terminal_data: Any = None
    products: Any = None


class PaymentErrorDetails(_Entity):
    error_code: str | None = None
    error_description: str | None = None
    error_reason: str | None = None
    error_source: str | None = None
    error_code_raw: str | None = None
    error_description_raw: str | None = None
    error_subcode_raw: str | None = None


class PaymentEntity(_Entity):
    cf_payment_id: str | None = None
    order_id: str | None = None
    entity: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    order_amount: Decimal | None = None
    order_currency: str | None = None
    #: SUCCESS, NOT_ATTEMPTED, FAILED, USER_DROPPED, VOID, CANCELLED, PENDING, or something newer.
    payment_status: str | None = None
    payment_message: str | None = None
    payment_time: str | None = None
    payment_completion_time: str | None = None
    payment_group: str | None = None
    #: One key (``upi``, ``card``…) holding that method's details.
    payment_method: dict[str, Any] | None = None
    bank_reference: str | None = None
    auth_id: str | None = None
    is_captured: bool | None = None
    error_details: PaymentErrorDetails | None = None
    authorization: Any = None
    international_payment: Any = None
    payment_gateway_details: Any = None
    payment_surcharge: Any = None


class PayOrderData(_Entity):
    url: str | None = None
    payload: Any = None
    content_type: str | None = None
    method: str | None = None


class PayOrderEntity(_Entity):
    cf_payment_id: str | None = None
    payment_amount: Decimal | None = None
    payment_method: str | None = None
    channel: str | None = None
    action: str | None = None
    data: PayOrderData | None = None


class RefundSpeedEntity(_Entity):
    requested: str | None = None
    accepted: str | None = None
    processed: str | None = None
    message: str | None = None


class RefundEntity(_Entity):
    cf_refund_id: str | None = None
    cf_payment_id: str | None = None
    refund_id: str | None = None
    order_id: str | None = None
    #: ``refund`` in the API, ``Refund`` in webhooks.
    entity: str | None = None
    refund_amount: Decimal | None = None
    refund_currency: str | None = None
    refund_note: str | None = None
    #: SUCCESS, PENDING, CANCELLED, ONHOLD; also FAILED, which the description lists and the enum omits.
    refund_status: str | None = None
    refund_arn: str | None = None
    refund_charge: Decimal | None = None
    status_description: str | None = None
    metadata: dict[str, Any] | None = None
    refund_splits: list[Any] | None = None
    refund_type: str | None = None
    refund_mode: str | None = None
    created_at: str | None = None
    processed_at: str | None = None
    #: An object in API responses, a plain string in some webhook samples.
    refund_speed: RefundSpeedEntity | str | None = None
    charges_currency: str | None = None


class SettlementEntity(_Entity):
    cf_settlement_id: str | None = None
    #: An integer in SPEC; kept as text like every other id.
    settlement_id: str | None = None
    cf_payment_id: str | None = None
    order_id: str | None = None
    entity: str | None = None
    order_amount: Decimal | None = None
    order_currency: str | None = None
    settlement_currency: str | None = None
    payment_time: str | None = None
    service_charge: Decimal | None = None
    service_tax: Decimal | None = None
    settlement_amount: Decimal | None = None
    transfer_id: str | None = None
    transfer_time: str | None = None
    #: The bank UTR of the payout.
    transfer_utr: str | None = None
    charges_currency: str | None = None


class SettlementsPage(_Entity):
    """``{cursor, limit, data}``: the paginated shape (``client.settlements`` also takes a bare entity)."""

    cursor: str | None = None
    limit: int | None = None
    data: list[SettlementEntity] | None = None


class ReconRow(_Entity):
    """One event of ``POST /recon`` (SPEC ``ReconEntity_data_inner``); the rarer fields stay as extras."""

    event_id: str | None = None
    #: SETTLEMENT, PAYMENT, REFUND, REFUND_REVERSAL, DISPUTE, CHARGEBACK, OTHER_ADJUSTMENT…
    event_type: str | None = None
    event_amount: Decimal | None = None
    event_settlement_amount: Decimal | None = None
    event_status: str | None = None
    event_time: str | None = None
    event_currency: str | None = None
    sale_type: str | None = None
    order_id: str | None = None
    order_amount: Decimal | None = None
    cf_payment_id: str | None = None
    payment_utr: str | None = None
    cf_settlement_id: str | None = None
    settlement_date: str | None = None
    settlement_utr: str | None = None
    refund_id: str | None = None
    amount_settled: Decimal | None = None
    service_charge: Decimal | None = None
    service_tax: Decimal | None = None


class ReconPage(_Entity):
    cursor: str | None = None
    limit: int | None = None
    data: list[ReconRow] | None = None


class ReconEventDetails(_Entity):
    event_id: str | None = None
    event_type: str | None = None
    event_amount: Decimal | None = None
    event_settlement_amount: Decimal | None = None
    event_status: str | None = None
    event_time: str | None = None
    event_currency: str | None = None
    sale_type: str | None = None


class ReconOrderDetails(_Entity):
    order_id: str | None = None
    order_amount: Decimal | None = None
    order_currency: str | None = None


class ReconPaymentDetails(_Entity):
    cf_payment_id: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    bank_reference: str | None = None
    payment_time: str | None = None


class ReconSettlementDetails(_Entity):
    cf_settlement_id: str | None = None
    utr: str | None = None
    settlement_date: str | None = None


class ReconRefundDetails(_Entity):
    refund_id: str | None = None
    refund_arn: str | None = None
    refund_processed_at: str | None = None


class SettlementReconRow(_Entity):
    """One event of ``POST /settlement/recon``: the ``/recon`` data, grouped by subject."""

    event_details: ReconEventDetails | None = None
    order_details: ReconOrderDetails | None = None
    customer_details: CustomerDetailsEntity | None = None
    payment_details: ReconPaymentDetails | None = None
    settlement_details: ReconSettlementDetails | None = None
    dispute_details: Any = None
    refund_details: ReconRefundDetails | None = None


class SettlementReconPage(_Entity):
    cursor: str | None = None
    limit: int | None = None
    data: list[SettlementReconRow] | None = None

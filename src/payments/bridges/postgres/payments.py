"""Payments and their gateway attempts in PostgreSQL (``PaymentRepository``).

Personal data (customer name, email, phone) is sealed by ``PiiCipher`` before it reaches a statement
and opened after a row is read; the plain text never touches the database. Transitions are guarded in
SQL: the UPDATE names the states the trigger may leave and the version it read (STYLE §5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg

from payments.bridges.postgres.json_values import from_json, to_json
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import Connection
from payments.domain.errors import ConcurrentTransition, NotFound
from payments.domain.gateway import AttemptStatus, GatewayAttempt
from payments.domain.money import Money
from payments.domain.payment.model import CustomerDetails, Payment
from payments.domain.payment.repository import HistoryQuery
from payments.domain.payment.states import PaymentState, PaymentTrigger, sources_of

_COLUMNS: Final = """
    payment_id, order_id, user_id, gateway, gateway_order_id, gateway_payment_id, amount, currency,
    status, payment_method, customer_email_ciphertext, customer_phone_ciphertext, customer_name_ciphertext,
    encryption_key_id, metadata::text AS metadata, purpose, failure_reason, settlement_status,
    settlement_amount, is_reconciled, retry_count, idempotency_key, request_hash, version, created_at,
    updated_at, payment_session_id, order_expires_at, description, return_url, client_ip,
    device_fingerprint
"""

#: A new payment; a second insert with the same payment id (a retried command) changes nothing.
INSERT_PAYMENT: Final = """
INSERT INTO payments (
    payment_id, order_id, user_id, gateway, amount, currency, status, customer_email_ciphertext,
    customer_email_hash, customer_phone_ciphertext, customer_phone_hash, customer_name_ciphertext,
    encryption_key_id, metadata, purpose, idempotency_key, request_hash, version, created_at, updated_at,
    description, return_url, gateway_order_id, gateway_payment_id, payment_session_id, payment_method,
    failure_reason, settlement_status, settlement_amount, is_reconciled, retry_count, order_expires_at,
    client_ip, device_fingerprint
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15, $16, $17, $18,
        $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)
ON CONFLICT (payment_id) DO NOTHING
RETURNING payment_id
"""

#: One payment by id.
SELECT_PAYMENT: Final = f"SELECT {_COLUMNS} FROM payments WHERE payment_id = $1"  # noqa: S608
#: One payment by id, its row locked until the transaction ends (refund balance, verify).
SELECT_PAYMENT_FOR_UPDATE: Final = f"SELECT {_COLUMNS} FROM payments WHERE payment_id = $1 FOR UPDATE"  # noqa: S608
#: One payment by our gateway order id.
SELECT_PAYMENT_BY_ORDER: Final = f"SELECT {_COLUMNS} FROM payments WHERE order_id = $1"  # noqa: S608

#: Write a change only if the row is still in a state the trigger may leave and at the version read.
UPDATE_PAYMENT_GUARDED: Final = """
UPDATE payments
SET status = $3, gateway_order_id = $4, gateway_payment_id = $5, payment_session_id = $6,
    payment_method = $7, failure_reason = $8, settlement_status = $9, settlement_amount = $10,
    is_reconciled = $11, retry_count = $12, order_expires_at = $13, version = $14, updated_at = $15
WHERE payment_id = $1 AND status = ANY($2::text[]) AND version = $16
"""

#: A user's payments (every payment when $1 is NULL), newest first, after a keyset cursor.
SELECT_HISTORY: Final = f"""
SELECT {_COLUMNS} FROM payments
WHERE ($1::text IS NULL OR user_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND created_at >= coalesce($3::timestamptz, '-infinity')
  AND created_at < coalesce($4::timestamptz, 'infinity')
  AND ($5::timestamptz IS NULL OR (created_at, payment_id) < ($5, $6::text))
ORDER BY created_at DESC, payment_id DESC
LIMIT $7
"""  # noqa: S608

#: Unpaid payments whose order expired, oldest expiry first.
SELECT_DUE_FOR_EXPIRY: Final = f"""
SELECT {_COLUMNS} FROM payments
WHERE status IN ('CREATED', 'PENDING', 'FAILED') AND order_expires_at < $1
ORDER BY order_expires_at
LIMIT $2
"""  # noqa: S608

#: Record a gateway attempt, or move its status; unchanged rows are not rewritten.
UPSERT_ATTEMPT: Final = """
INSERT INTO transactions (
    transaction_id, payment_id, gateway, provider_transaction_id, bank_reference, gateway_response,
    amount, currency, status, payment_method, error_code, error_reason, message, started_at, completed_at,
    created_at, updated_at
)
VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
ON CONFLICT (gateway, provider_transaction_id) DO UPDATE
SET status = EXCLUDED.status, bank_reference = EXCLUDED.bank_reference,
    gateway_response = EXCLUDED.gateway_response, error_code = EXCLUDED.error_code,
    error_reason = EXCLUDED.error_reason, message = EXCLUDED.message,
    completed_at = EXCLUDED.completed_at, updated_at = EXCLUDED.updated_at
WHERE transactions.status IS DISTINCT FROM EXCLUDED.status
RETURNING transaction_id
"""

#: A payment's attempts, oldest first.
SELECT_ATTEMPTS: Final = """
SELECT t.provider_transaction_id, p.order_id, t.amount, t.currency, t.status, t.payment_method, t.message,
       t.bank_reference, t.error_code, t.error_reason, t.started_at, t.completed_at,
       t.gateway_response::text AS gateway_response
FROM transactions t JOIN payments p USING (payment_id)
WHERE t.payment_id = $1
ORDER BY t.created_at, t.transaction_id
"""


class PgPaymentRepository:
    def __init__(self, connection: Connection, cipher: PiiCipher, *, gateway: str = "cashfree") -> None:
        self._connection = connection
        self._cipher = cipher
        self._gateway = gateway

    async def add(self, payment: Payment) -> bool:
        customer = payment.customer
        email = self._cipher.seal(customer.email, column="customer_email") if customer.email else None
        phone = self._cipher.seal(customer.phone, column="customer_phone")
        name = self._cipher.seal(customer.name, column="customer_name") if customer.name else None
        inserted = await self._connection.fetchval(
            INSERT_PAYMENT,
            payment.payment_id,
            payment.order_id,
            payment.user_id,
            payment.gateway,
            payment.amount.amount,
            payment.amount.currency,
            payment.status.value,
            email.ciphertext if email else None,
            self._cipher.lookup_hash(customer.email, kind="email") if customer.email else None,
            phone.ciphertext,
            self._cipher.lookup_hash(customer.phone, kind="phone"),
            name.ciphertext if name else None,
            self._cipher.key_id,
            to_json(dict(payment.metadata)),
            payment.purpose,
            payment.idempotency_key,
            payment.request_hash,
            payment.version,
            payment.created_at,
            payment.updated_at,
            payment.description,
            payment.return_url,
            *_mutable_fields(payment),
            payment.client_ip,
            payment.device_fingerprint,
        )
        return inserted is not None

    async def get(self, payment_id: str, *, for_update: bool = False) -> Payment:
        query = SELECT_PAYMENT_FOR_UPDATE if for_update else SELECT_PAYMENT
        row = await self._connection.fetchrow(query, payment_id)
        if row is None:
            raise NotFound(f"payment {payment_id} not found")
        return self._payment(row)

    async def get_by_order_id(self, order_id: str) -> Payment:
        row = await self._connection.fetchrow(SELECT_PAYMENT_BY_ORDER, order_id)
        if row is None:
            raise NotFound(f"no payment for order {order_id}")
        return self._payment(row)

    async def save(self, before: Payment, after: Payment, trigger: PaymentTrigger | None) -> None:
        allowed = sources_of(trigger) if trigger is not None else {before.status}
        status = await self._connection.execute(
            UPDATE_PAYMENT_GUARDED,
            after.payment_id,
            [state.value for state in allowed],
            after.status.value,
            after.gateway_order_id,
            after.gateway_payment_id,
            after.session_id,
            after.payment_method,
            after.failure_reason,
            after.settlement_status,
            after.settlement_amount.amount if after.settlement_amount else None,
            after.is_reconciled,
            after.retry_count,
            after.order_expires_at,
            after.version,
            after.updated_at,
            before.version,
        )
        if status != "UPDATE 1":
            raise ConcurrentTransition(f"payment {after.payment_id} changed concurrently")

    async def record_attempt(self, payment_id: str, attempt: GatewayAttempt, *, now: datetime) -> bool:
        changed = await self._connection.fetchval(
            UPSERT_ATTEMPT,
            transaction_id(self._gateway, attempt.attempt_id),
            payment_id,
            self._gateway,
            attempt.attempt_id,
            attempt.bank_reference,
            to_json(dict(attempt.raw)),
            attempt.amount.amount,
            attempt.amount.currency,
            attempt.status.value,
            attempt.method,
            attempt.error_code,
            attempt.error_reason,
            attempt.message,
            attempt.started_at,
            attempt.completed_at,
            now,
        )
        return changed is not None

    async def attempts(self, payment_id: str) -> Sequence[GatewayAttempt]:
        rows = await self._connection.fetch(SELECT_ATTEMPTS, payment_id)
        return [_attempt(row) for row in rows]

    async def history(self, query: HistoryQuery) -> Sequence[Payment]:
        after_at, after_id = query.after if query.after else (None, None)
        rows = await self._connection.fetch(
            SELECT_HISTORY,
            query.user_id,
            query.status.value if query.status else None,
            query.created_from,
            query.created_to,
            after_at,
            after_id,
            query.limit,
        )
        return [self._payment(row) for row in rows]

    async def due_for_expiry(self, *, now: datetime, limit: int) -> Sequence[Payment]:
        rows = await self._connection.fetch(SELECT_DUE_FOR_EXPIRY, now, limit)
        return [self._payment(row) for row in rows]

    def _payment(self, row: asyncpg.Record) -> Payment:
        currency = row["currency"]
        settlement = row["settlement_amount"]
        return Payment(
            payment_id=row["payment_id"],
            order_id=row["order_id"],
            user_id=row["user_id"],
            amount=Money(row["amount"], currency),
            status=PaymentState(row["status"]),
            customer=self._customer(row),
            gateway=row["gateway"],
            gateway_order_id=row["gateway_order_id"],
            gateway_payment_id=row["gateway_payment_id"],
            session_id=row["payment_session_id"],
            payment_method=row["payment_method"],
            description=row["description"],
            metadata=from_json(row["metadata"]) or {},
            return_url=row["return_url"],
            failure_reason=row["failure_reason"],
            settlement_status=row["settlement_status"],
            settlement_amount=Money(settlement, currency) if settlement is not None else None,
            is_reconciled=row["is_reconciled"],
            retry_count=row["retry_count"],
            order_expires_at=row["order_expires_at"],
            purpose=row["purpose"],
            idempotency_key=row["idempotency_key"],
            request_hash=row["request_hash"],
            client_ip=row["client_ip"],
            device_fingerprint=row["device_fingerprint"],
            version=row["version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _customer(self, row: asyncpg.Record) -> CustomerDetails:
        key_id = row["encryption_key_id"]
        return CustomerDetails(
            name=self._open(row["customer_name_ciphertext"], key_id, "customer_name"),
            email=self._open(row["customer_email_ciphertext"], key_id, "customer_email"),
            phone=self._open(row["customer_phone_ciphertext"], key_id, "customer_phone") or "",
        )

    def _open(self, sealed: bytes | None, key_id: str, column: str) -> str | None:
        return None if sealed is None else self._cipher.open(sealed, key_id=key_id, column=column)


def _mutable_fields(payment: Payment) -> tuple[object, ...]:
    """The columns a transition may change, in INSERT_PAYMENT's order ($23 to $32)."""
    return (
        payment.gateway_order_id,
        payment.gateway_payment_id,
        payment.session_id,
        payment.payment_method,
        payment.failure_reason,
        payment.settlement_status,
        payment.settlement_amount.amount if payment.settlement_amount else None,
        payment.is_reconciled,
        payment.retry_count,
        payment.order_expires_at,
    )


def transaction_id(gateway: str, attempt_id: str) -> str:
    """Our id of a gateway attempt: derived, so recording the same attempt twice cannot make two rows."""
    return "txn_" + hashlib.sha256(f"{gateway}:{attempt_id}".encode()).hexdigest()[:24]


def _attempt(row: asyncpg.Record) -> GatewayAttempt:
    raw: Any = from_json(row["gateway_response"])
    return GatewayAttempt(
        attempt_id=row["provider_transaction_id"],
        order_id=row["order_id"],
        amount=Money(row["amount"], row["currency"]),
        status=AttemptStatus(row["status"]),
        method=row["payment_method"],
        message=row["message"],
        bank_reference=row["bank_reference"],
        error_code=row["error_code"],
        error_reason=row["error_reason"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        raw=raw if isinstance(raw, dict) else {},
    )

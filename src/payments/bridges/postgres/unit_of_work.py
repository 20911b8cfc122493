"""The unit of work on PostgreSQL: one pooled connection, one transaction, its inbox, outbox and audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Final

import asyncpg

from payments.bridges.postgres.alerts import PgAlertRepository
from payments.bridges.postgres.audit import PgAuditLog
from payments.bridges.postgres.emails import PgEmailLog
from payments.bridges.postgres.fraud_signals import PgFraudSignalRepository
from payments.bridges.postgres.inbox import PgInbox
from payments.bridges.postgres.invoices import PgInvoiceRepository
from payments.bridges.postgres.outbox import PgOutbox
from payments.bridges.postgres.payments import PgPaymentRepository
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import Connection
from payments.bridges.postgres.reconciliation import PgReconciliationRepository, PgSettlementRepository
from payments.bridges.postgres.refunds import PgRefundRepository
from payments.bridges.postgres.transaction import pooled_transaction, unavailable_if_connection_lost
from payments.bridges.postgres.webhook_logs import PgWebhookLogRepository

#: No extra message headers unless the caller passes its trace ids.
NO_HEADERS: Final[Mapping[str, str]] = MappingProxyType({})

#: Waiting longer than this for a free connection means the pool is exhausted or the server is gone;
#: failing lets the message go to a retry tier instead of holding its delivery open.
ACQUIRE_TIMEOUT_SECONDS: Final = 10.0


class PgUnitOfWork:
    """One transaction; everything reached through it commits or rolls back together."""

    def __init__(
        self,
        connection: Connection,
        *,
        headers: Mapping[str, str],
        cipher: PiiCipher | None,
        invoice_directory: Path | None = None,
    ) -> None:
        #: For repositories that later capabilities add; they must not commit or roll back themselves.
        self.connection = connection
        self.inbox = PgInbox(connection)
        self.outbox = PgOutbox(connection, default_headers=headers)
        self.audit = PgAuditLog(connection)
        self.refunds = PgRefundRepository(connection)
        self.alerts = PgAlertRepository(connection)
        self.fraud_signals = PgFraudSignalRepository(connection)
        #: Invoice PDFs go to ``invoice_directory`` when it is set, into the row otherwise.
        self.invoices = PgInvoiceRepository(connection, directory=invoice_directory)
        self.settlements = PgSettlementRepository(connection)
        self.reconciliation = PgReconciliationRepository(connection)
        self._cipher = cipher

    @property
    def payments(self) -> PgPaymentRepository:
        return PgPaymentRepository(self.connection, self._require_cipher())

    @property
    def webhooks(self) -> PgWebhookLogRepository:
        # Webhook bodies name the customer, so they are sealed like a payment's customer fields.
        return PgWebhookLogRepository(self.connection, self._require_cipher())

    @property
    def emails(self) -> PgEmailLog:
        # Emails hold their recipient's address, sealed like a payment's customer email.
        return PgEmailLog(self.connection, self._require_cipher())

    def _require_cipher(self) -> PiiCipher:
        # Payments, webhooks and emails hold personal data, so their repositories need the cipher;
        # units of work opened without one (maintenance, tests of other tables) cannot reach them.
        if self._cipher is None:
            raise RuntimeError("this unit of work was opened without a personal-data cipher")
        return self._cipher


@asynccontextmanager
async def pg_unit_of_work(
    pool: asyncpg.Pool[asyncpg.Record],
    *,
    headers: Mapping[str, str] = NO_HEADERS,
    cipher: PiiCipher | None = None,
    acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
    invoice_directory: Path | None = None,
) -> AsyncIterator[PgUnitOfWork]:
    """Acquire a connection, BEGIN, yield the unit of work; COMMIT on normal exit, ROLLBACK on error.

    ``headers`` (trace and request ids) are added to every outbox event. Connection failures, from
    acquiring to committing, raise ``DependencyUnavailable`` so callers can retry; other errors, such
    as a constraint violation, propagate unchanged after the rollback.
    """
    async with pooled_transaction(pool, acquire_timeout=acquire_timeout) as connection:
        # Other bridges translate their own socket errors, so a raw OSError or TimeoutError escaping
        # this block came from this connection (a statement timeout, a reset).
        with unavailable_if_connection_lost("query", connection):
            yield PgUnitOfWork(
                connection, headers=headers, cipher=cipher, invoice_directory=invoice_directory
            )

"""In-memory inbox, outbox and audit log behind a unit of work with real commit/rollback semantics.

An ``InMemoryStore`` plays the database: it holds what has been committed. Each unit of work stages its
changes and copies them into the store only when its block exits normally, so an exception leaves no
inbox claims, no outbox events and no audit rows. The rules match the PostgreSQL bridge: a second claim
of an event is False, a duplicate outbox ``event_id`` raises ``Conflict``, payloads must be JSON, and
audit rows form the same hash chain (the bridge's own ``chain_hash``), serialised by a lock held from
the first append until the unit of work ends, as the advisory lock does in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from payments.bridges.postgres.audit import chain_hash, link_is_intact
from payments.bridges.postgres.json_values import from_json, to_json
from payments.domain.alerts.repository import AlertRepository
from payments.domain.audit.model import AuditEntry, ChainVerification
from payments.domain.audit.repository import AuditLog
from payments.domain.errors import Conflict
from payments.domain.events import Inbox, Outbox, OutgoingEvent
from payments.domain.fraud.signals import FraudSignalRepository
from payments.domain.invoice.model import InvoiceRepository
from payments.domain.notification.model import EmailLog
from payments.domain.payment.repository import PaymentRepository
from payments.domain.reconciliation.repository import ReconciliationRepository, SettlementRepository
from payments.domain.refund.repository import RefundRepository
from payments.domain.webhook.log import WebhookLogRepository
from payments.pipeline.topology import exchange_for
from tests.fakes.alerts import AlertTables, InMemoryAlertRepository, InMemoryFraudSignalRepository
from tests.fakes.emails import EmailTables, InMemoryEmailLog
from tests.fakes.invoices import InMemoryInvoiceRepository, InvoiceTables
from tests.fakes.payments import InMemoryPaymentRepository, PaymentTables
from tests.fakes.reconciliation import (
    InMemoryReconciliationRepository,
    InMemorySettlementRepository,
    ReconciliationTables,
)
from tests.fakes.refunds import InMemoryRefundRepository, RefundTables
from tests.fakes.webhook_logs import InMemoryWebhookLogRepository, WebhookTables

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class StoredOutboxEvent:
    """An outbox row as the relay would read it: payload and headers as stored JSON gives them back."""

    event_id: str
    exchange: str
    routing_key: str
    payload: dict[str, Any]
    headers: dict[str, str]
    occurred_at: datetime


@dataclass(frozen=True)
class StoredAuditRow:
    id: int
    entry: AuditEntry
    prev_hash: str | None
    hash: str


class InMemoryStore:
    """The committed state that every unit of work made from this store shares."""

    def __init__(self) -> None:
        self.inbox_claims: set[tuple[str, str]] = set()
        #: Insertion-ordered, like the outbox table's ids.
        self.outbox_events: dict[str, StoredOutboxEvent] = {}
        self.audit_rows: list[StoredAuditRow] = []
        #: Like a sequence: ids handed out by rolled-back units of work are not reused.
        self.audit_ids = itertools.count(1)
        #: Stands in for the advisory lock that keeps the audit chain linear.
        self.audit_chain_lock = asyncio.Lock()
        self.payment_tables = PaymentTables()
        self.webhook_tables = WebhookTables()
        self.refund_tables = RefundTables()
        self.alert_tables = AlertTables()
        self.email_tables = EmailTables()
        self.invoice_tables = InvoiceTables()
        self.reconciliation_tables = ReconciliationTables()

    def unit_of_work(
        self, *, headers: Mapping[str, str] = NO_HEADERS
    ) -> AbstractAsyncContextManager[InMemoryUnitOfWork]:
        """A unit of work over this store: commits on normal exit, discards everything on exception."""
        return in_memory_unit_of_work(self, headers=headers)

    def tamper_audit_row(self, row_id: int, **changes: Any) -> StoredAuditRow:
        """Edit a committed audit row behind the log's back (as a superuser could); returns the original."""
        index = next(i for i, row in enumerate(self.audit_rows) if row.id == row_id)
        original = self.audit_rows[index]
        self.audit_rows[index] = replace(original, entry=replace(original.entry, **changes))
        return original

    def restore_audit_row(self, original: StoredAuditRow) -> None:
        """Put back a row returned by ``tamper_audit_row``."""
        index = next(i for i, row in enumerate(self.audit_rows) if row.id == original.id)
        self.audit_rows[index] = original


class InMemoryInbox:
    """``Inbox`` with staged claims."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._staged: set[tuple[str, str]] = set()

    async def claim(self, *, consumer: str, event_id: str) -> bool:
        key = (consumer, event_id)
        if key in self._store.inbox_claims or key in self._staged:
            return False
        self._staged.add(key)
        return True

    def commit(self) -> None:
        self._store.inbox_claims |= self._staged


class InMemoryOutbox:
    """``Outbox`` with staged events, refusing a duplicate ``event_id`` as the table's UNIQUE key does."""

    def __init__(self, store: InMemoryStore, *, default_headers: Mapping[str, str]) -> None:
        self._store = store
        self._default_headers = dict(default_headers)
        self._staged: dict[str, StoredOutboxEvent] = {}

    async def add(self, event: OutgoingEvent) -> None:
        exchange = exchange_for(event.routing_key)
        payload = from_json(to_json(event.payload))  # same serialisation, same errors as PgOutbox
        if event.event_id in self._store.outbox_events or event.event_id in self._staged:
            raise Conflict(f"outbox already holds event {event.event_id}")
        self._staged[event.event_id] = StoredOutboxEvent(
            event_id=event.event_id,
            exchange=exchange.value,
            routing_key=event.routing_key,
            payload=payload,
            headers={**self._default_headers, **event.headers},
            occurred_at=event.occurred_at,
        )

    async def add_all(self, events: Sequence[OutgoingEvent]) -> None:
        for event in events:
            await self.add(event)

    def commit(self) -> None:
        self._store.outbox_events.update(self._staged)


def _as_stored(state: Mapping[str, Any] | None) -> Any:
    # The fake's stand-in for the jsonb round trip: the bridge's own writer, then its own reader.
    return None if state is None else from_json(to_json(state))


class InMemoryAuditLog:
    """``AuditLog`` with the bridge's hash chain; staged rows join the chain at commit."""

    def __init__(self, store: InMemoryStore) -> None:
        self._store = store
        self._staged: list[StoredAuditRow] = []
        self._holds_lock = False

    async def append(self, entry: AuditEntry) -> None:
        if entry.created_at.tzinfo is None:
            raise ValueError("audit timestamps must be timezone-aware")  # as PgAuditLog refuses them
        stored = replace(
            entry, before_state=_as_stored(entry.before_state), after_state=_as_stored(entry.after_state)
        )
        if not self._holds_lock:
            await self._store.audit_chain_lock.acquire()
            self._holds_lock = True
        rows = self._visible_rows()
        prev_hash = rows[-1].hash if rows else None
        self._staged.append(
            StoredAuditRow(
                id=next(self._store.audit_ids),
                entry=stored,
                prev_hash=prev_hash,
                hash=chain_hash(prev_hash, stored),
            )
        )

    async def verify_chain(self) -> ChainVerification:
        checked = 0
        expected_prev: str | None = None
        for row in self._visible_rows():
            checked += 1
            if not link_is_intact(
                expected_prev=expected_prev, prev_hash=row.prev_hash, stored=row.hash, entry=row.entry
            ):
                return ChainVerification(checked=checked, first_broken_id=row.id)
            expected_prev = row.hash
        return ChainVerification(checked=checked, first_broken_id=None)

    def _visible_rows(self) -> list[StoredAuditRow]:
        # Like a transaction: what others committed, then our own uncommitted rows.
        return [*self._store.audit_rows, *self._staged]

    def commit(self) -> None:
        self._store.audit_rows.extend(self._staged)

    def release(self) -> None:
        if self._holds_lock:
            self._store.audit_chain_lock.release()
            self._holds_lock = False


class InMemoryUnitOfWork:
    """``UnitOfWork`` over an ``InMemoryStore``; use it through ``in_memory_unit_of_work``."""

    def __init__(self, store: InMemoryStore, *, headers: Mapping[str, str]) -> None:
        self._inbox = InMemoryInbox(store)
        self._outbox = InMemoryOutbox(store, default_headers=headers)
        self._audit = InMemoryAuditLog(store)
        self._payments = InMemoryPaymentRepository(store.payment_tables)
        self._webhooks = InMemoryWebhookLogRepository(store.webhook_tables)
        self._refunds = InMemoryRefundRepository(store.refund_tables)
        self._alerts = InMemoryAlertRepository(store.alert_tables)
        self._fraud_signals = InMemoryFraudSignalRepository(store.alert_tables)
        self._emails = InMemoryEmailLog(store.email_tables)
        self._invoices = InMemoryInvoiceRepository(store.invoice_tables)
        self._settlements = InMemorySettlementRepository(store.reconciliation_tables)
        self._reconciliation = InMemoryReconciliationRepository(
            store.reconciliation_tables,
            payments=store.payment_tables,
            refunds=store.refund_tables,
            webhooks=store.webhook_tables,
        )
        self.inbox: Inbox = self._inbox
        self.outbox: Outbox = self._outbox
        self.audit: AuditLog = self._audit
        self.payments: PaymentRepository = self._payments
        self.webhooks: WebhookLogRepository = self._webhooks
        self.refunds: RefundRepository = self._refunds
        self.alerts: AlertRepository = self._alerts
        self.fraud_signals: FraudSignalRepository = self._fraud_signals
        self.emails: EmailLog = self._emails
        self.invoices: InvoiceRepository = self._invoices
        self.settlements: SettlementRepository = self._settlements
        self.reconciliation: ReconciliationRepository = self._reconciliation

    def commit(self) -> None:
        # Synchronous, so no other task can see half of it.
        self._inbox.commit()
        self._outbox.commit()
        self._audit.commit()
        self._payments.commit()
        self._webhooks.commit()
        self._refunds.commit()
        self._alerts.commit()
        self._fraud_signals.commit()
        self._emails.commit()
        self._invoices.commit()
        self._settlements.commit()
        self._reconciliation.commit()

    def release(self) -> None:
        self._audit.release()
        self._payments.release()
        self._invoices.release()
        self._reconciliation.release()


@asynccontextmanager
async def in_memory_unit_of_work(
    store: InMemoryStore, *, headers: Mapping[str, str] = NO_HEADERS
) -> AsyncIterator[InMemoryUnitOfWork]:
    """Yield a unit of work; commit its staged changes on normal exit, drop them on exception."""
    uow = InMemoryUnitOfWork(store, headers=headers)
    try:
        yield uow
        uow.commit()
    finally:
        uow.release()

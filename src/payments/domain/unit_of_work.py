"""The transaction boundary every change goes through."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from payments.domain.alerts.repository import AlertRepository
from payments.domain.audit.repository import AuditLog
from payments.domain.events import Inbox, Outbox
from payments.domain.fraud.signals import FraudSignalRepository
from payments.domain.invoice.model import InvoiceRepository
from payments.domain.notification.model import EmailLog
from payments.domain.payment.repository import PaymentRepository
from payments.domain.reconciliation.repository import ReconciliationRepository, SettlementRepository
from payments.domain.refund.repository import RefundRepository
from payments.domain.webhook.log import WebhookLogRepository


class UnitOfWork(Protocol):
    """One database transaction: its repositories, inbox, outbox and audit log share it.

    Used as ``async with uow_factory() as uow: ...``: leaving the block normally commits, an exception
    rolls back. Each capability adds its repository here.
    """

    @property
    def inbox(self) -> Inbox: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def webhooks(self) -> WebhookLogRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def alerts(self) -> AlertRepository: ...

    @property
    def fraud_signals(self) -> FraudSignalRepository: ...

    @property
    def invoices(self) -> InvoiceRepository: ...

    @property
    def emails(self) -> EmailLog: ...

    @property
    def settlements(self) -> SettlementRepository: ...

    @property
    def reconciliation(self) -> ReconciliationRepository: ...


#: Opens one unit of work (``async with factory() as uow``).
UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]

"""The transaction boundary every change goes through."""

from __future__ import annotations

from typing import Protocol

from payments.domain.audit.repository import AuditLog
from payments.domain.events import Inbox, Outbox


class UnitOfWork(Protocol):
    """One database transaction: its repositories, inbox, outbox and audit log share it.

    Used as ``async with uow_factory() as uow: ...``: leaving the block normally commits, an exception
    rolls back. Later capabilities add their repositories here.
    """

    inbox: Inbox
    outbox: Outbox
    audit: AuditLog

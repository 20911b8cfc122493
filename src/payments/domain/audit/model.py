"""The financial audit trail: who changed what, from where, under which request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One append-only record of a financial action or a refused attempt at one."""

    actor_id: str | None
    action: str
    resource_type: str
    resource_id: str
    before_state: Mapping[str, Any] | None
    after_state: Mapping[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    trace_id: str
    request_id: str
    created_at: datetime


@dataclass(frozen=True)
class ChainVerification:
    """The outcome of re-computing the audit hash chain."""

    #: Rows checked.
    checked: int
    #: The id of the first row whose hash or link does not match, or None if the chain is intact.
    first_broken_id: int | None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None

"""An admin alert: what happened, since when, and the numbers behind it."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

#: Bumped when the alert message changes incompatibly; consumers read it before anything else.
SCHEMA_VERSION: Final = 1
#: The routing key every admin alert is published under (DESIGN §3).
ADMIN_ALERT_ROUTING_KEY: Final = "email.admin.alert"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert as raised; ``kind`` and ``subject`` together say which condition it is about.

    ``subject`` names what the alert is about without personal data ("method:upi", "queue:
    payments.commands", "ip:203.0.113.7"); alerts of one kind and subject share a cooldown.
    """

    kind: str
    subject: str
    severity: Severity
    #: One line an admin reads first: what happened.
    title: str
    #: The numbers behind it (counts, rates, thresholds, window), JSON-serialisable.
    details: Mapping[str, Any] = field(default_factory=dict)
    #: When the condition began (the start of the window that tripped it).
    since: datetime
    raised_at: datetime
    #: Which part of the system raised it: "fraud", "alerts", "alertmanager", "payments", ...
    source: str

    @property
    def dedup_key(self) -> str:
        """Alerts with the same key share one cooldown."""
        return f"{self.kind}:{self.subject}"

    @property
    def alert_id(self) -> str:
        """Stable for one condition at one instant: raising the same alert twice stores it once."""
        digest = hashlib.sha256(f"{self.dedup_key}|{self.raised_at.isoformat()}".encode()).hexdigest()
        return f"alr_{digest[:24]}"

    def message(self) -> dict[str, Any]:
        """The body of the ``email.admin.alert`` message and of the live stream's events."""
        return {
            "schemaVersion": SCHEMA_VERSION,
            "type": ADMIN_ALERT_ROUTING_KEY,
            "alertId": self.alert_id,
            "kind": self.kind,
            "subject": self.subject,
            "severity": self.severity.value,
            "title": self.title,
            "details": dict(self.details),
            "since": self.since.isoformat(),
            "raisedAt": self.raised_at.isoformat(),
            "source": self.source,
        }


@dataclass(frozen=True, kw_only=True)
class StoredAlert:
    """An alert as the ``alerts`` table keeps it; ``sequence`` orders alerts for the live stream."""

    sequence: int
    alert: Alert

"""Where alerts are kept (the ``alerts`` table)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from payments.domain.alerts.model import Alert, StoredAlert


class AlertRepository(Protocol):
    async def add_unless_recent(self, alert: Alert, *, cooldown: timedelta) -> bool:
        """Store ``alert`` unless one with its ``dedup_key`` was raised less than ``cooldown`` from it.

        True if stored. Atomic against concurrent callers: two workers raising the same alert at once
        store one. Raising an alert with the same ``alert_id`` again stores nothing.
        """
        ...

    async def recent(self, *, limit: int, after_sequence: int | None = None) -> Sequence[StoredAlert]:
        """Alerts newest first; or, with ``after_sequence``, those after it, oldest first (catch-up)."""
        ...

"""In-memory ``AlertRepository`` and ``FraudSignalRepository`` with the PostgreSQL ones' rules: a
cooldown per alert key, one row per id, writes visible to others only after commit."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from payments.bridges.postgres.json_values import from_json, to_json
from payments.domain.alerts.model import Alert, StoredAlert
from payments.domain.fraud.signals import FraudSignal


@dataclass
class AlertTables:
    alerts: dict[str, StoredAlert] = field(default_factory=dict)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    signals: dict[str, FraudSignal] = field(default_factory=dict)


class InMemoryAlertRepository:
    def __init__(self, tables: AlertTables) -> None:
        self._tables = tables
        self._staged: dict[str, StoredAlert] = {}

    async def add_unless_recent(self, alert: Alert, *, cooldown: timedelta) -> bool:
        visible = {**self._tables.alerts, **self._staged}
        recent = any(
            stored.alert.dedup_key == alert.dedup_key
            and abs(stored.alert.raised_at - alert.raised_at) < cooldown
            for stored in visible.values()
        )
        if recent or alert.alert_id in visible:
            return False
        # As the jsonb column does: details come back as JSON would give them.
        stored = replace(alert, details=from_json(to_json(alert.details)))
        self._staged[alert.alert_id] = StoredAlert(sequence=next(self._tables.sequence), alert=stored)
        return True

    async def recent(self, *, limit: int, after_sequence: int | None = None) -> Sequence[StoredAlert]:
        ordered = sorted({**self._tables.alerts, **self._staged}.values(), key=lambda s: s.sequence)
        if after_sequence is None:
            return list(reversed(ordered))[:limit]
        return [stored for stored in ordered if stored.sequence > after_sequence][:limit]

    def commit(self) -> None:
        self._tables.alerts.update(self._staged)
        self._staged.clear()


class InMemoryFraudSignalRepository:
    def __init__(self, tables: AlertTables) -> None:
        self._tables = tables
        self._staged: dict[str, FraudSignal] = {}

    async def add(self, signal: FraudSignal) -> bool:
        if signal.signal_id in self._tables.signals or signal.signal_id in self._staged:
            return False
        self._staged[signal.signal_id] = replace(signal, details=from_json(to_json(signal.details)))
        return True

    async def for_payment(self, payment_id: str) -> Sequence[FraudSignal]:
        signals = [s for s in self._visible() if s.payment_id == payment_id]
        return sorted(signals, key=lambda s: (s.created_at, s.rule))

    async def recent(self, *, limit: int) -> Sequence[FraudSignal]:
        return sorted(self._visible(), key=lambda s: s.created_at, reverse=True)[:limit]

    def commit(self) -> None:
        self._tables.signals.update(self._staged)
        self._staged.clear()

    def _visible(self) -> list[FraudSignal]:
        return [*self._tables.signals.values(), *self._staged.values()]

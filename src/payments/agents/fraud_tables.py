"""The windowed tables behind fraud screening, and the screen the payment service consults at create.

Every rule reads one table, and rules of one shape share it (a review and a block rule on IPs per
minute count into one table):

- velocity: a sliding COUNT or SUM (minor units, keyed per currency) per subject and window;
- failures: a sliding COUNT of failed payments per user or IP and window;
- spread: a sliding DISTINCT of one subject per another (users per IP, IPs per user) and window;
- spike: a tumbling COUNT of all payments, whose earlier windows are the trailing baseline.

A payment is added to every table it has a subject for, once per payment id (the tables are
idempotent per event id): a repeated create, a redelivered ``payment.created`` or a replay changes no
count. Blocked attempts count too, so a burst that keeps hammering stays blocked. Tables are keyed
by event time (the payment's creation), so a replay of the event log rebuilds them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from payments.domain.clock import Clock
from payments.domain.fraud import scoring
from payments.domain.fraud.rules import FraudRules, Measure, Subject
from payments.domain.fraud.screen import ALLOWED, Assessment, Digest, FraudScreen, PaymentAttempt
from payments.domain.money import Money
from payments.pipeline.context import AgentContext
from payments.tables import Kind, Sliding, Table, Tumbling, WindowStore
from payments.tables.windows import epoch_ms, from_epoch_ms

#: The key of the one row of the volume table: every payment counts there.
ALL: Final = "all"


@dataclass(frozen=True)
class _Counter:
    """A table a payment is added to: which subject keys it, and what it adds."""

    table: Table
    subject: Subject
    measure: Measure = Measure.COUNT
    #: Spread tables: the subject whose distinct keys are counted.
    of: Subject | None = None

    def entry(self, subjects: Mapping[str, str], amount: Money) -> tuple[str, int | str] | None:
        """(key, value) to add for a payment, or None if it lacks a subject this table needs."""
        key = subjects.get(self.subject.value)
        if key is None:
            return None
        if self.of is not None:
            member = subjects.get(self.of.value)
            return None if member is None else (key, member)
        if self.measure is Measure.AMOUNT:
            # Money only adds up within a currency.
            return f"{amount.currency}:{key}", scoring.minor_units(amount)
        return key, 1


class FraudTables:
    """The tables ``rules`` need, on ``store``; expiry follows ``clock``."""

    def __init__(self, store: WindowStore, *, rules: FraudRules, clock: Clock, digest: Digest) -> None:
        self.rules = rules
        self._store = store
        self._clock = clock
        self._digest = digest
        #: Table name -> counter; rule name -> the table name it reads.
        self._counters: dict[str, _Counter] = {}
        self._failures: dict[str, tuple[Table, Subject]] = {}
        self._reads: dict[str, str] = {}
        for velocity in rules.velocity:
            name = f"fraud.velocity.{velocity.subject}.{velocity.measure}.{velocity.window_seconds}s"
            kind = Kind.SUM if velocity.measure is Measure.AMOUNT else Kind.COUNT
            table = self._sliding(name, velocity.window_seconds, kind)
            self._counters.setdefault(name, _Counter(table, velocity.subject, velocity.measure))
            self._reads[velocity.name] = name
        for spread in rules.spread:
            name = f"fraud.spread.{spread.subject}.{spread.of}.{spread.window_seconds}s"
            table = self._sliding(name, spread.window_seconds, Kind.DISTINCT)
            self._counters.setdefault(name, _Counter(table, spread.subject, of=spread.of))
            self._reads[spread.name] = name
        for failure in rules.failures:
            name = f"fraud.failures.{failure.subject}.{failure.window_seconds}s"
            table = self._sliding(name, failure.window_seconds, Kind.COUNT)
            self._failures.setdefault(name, (table, failure.subject))
            self._reads[failure.name] = name
        self._volume = self._volume_table()

    def subjects_of(self, attempt: PaymentAttempt) -> dict[str, str]:
        """The keys ``attempt`` is counted under; emails and phones as keyed digests, absent ones left out."""
        subjects = {
            Subject.USER.value: attempt.user_id,
            Subject.IP.value: attempt.ip_address,
            Subject.DEVICE.value: attempt.device_fingerprint,
            Subject.EMAIL.value: attempt.email and self._digest(attempt.email, kind="email"),
            Subject.PHONE.value: attempt.phone and self._digest(attempt.phone, kind="phone"),
        }
        return {kind: key for kind, key in subjects.items() if key}

    async def record_attempt(self, attempt: PaymentAttempt) -> scoring.Observations:
        """Add ``attempt`` to every table (once per payment id) and read what each rule observes."""
        return await self.record(
            payment_id=attempt.payment_id,
            subjects=self.subjects_of(attempt),
            amount=attempt.amount,
            at=attempt.at,
        )

    async def record(
        self, *, payment_id: str, subjects: Mapping[str, str], amount: Money, at: datetime
    ) -> scoring.Observations:
        """``record_attempt`` from the subjects a ``payment.created`` carries (replay, rebuild)."""
        entries = {
            name: entry
            for name, counter in self._counters.items()
            if (entry := counter.entry(subjects, amount)) is not None
        }
        adds = [
            self._counters[name].table.add(key, payment_id, at=at, value=value)
            for name, (key, value) in entries.items()
        ]
        if self._volume is not None:
            adds.append(self._volume.add(ALL, payment_id, at=at))
        # Independent tables: one wait for all of them, not one round trip each.
        applied = await asyncio.gather(*adds)
        values = {name: result.value for name, result in zip(entries, applied[: len(entries)], strict=True)}
        failures = await self._failures_at(subjects, at)
        observed = {
            rule: values[name] if name in values else failures[name]
            for rule, name in self._reads.items()
            if name in values or name in failures
        }
        return scoring.Observations(values=observed, subjects=dict(subjects))

    async def record_failure(
        self, payment_id: str, user_id: str, ip: str | None, at: datetime, *, failure_id: str | None = None
    ) -> None:
        """Count a failure of ``payment_id`` against its user and IP, once per ``failure_id``.

        ``failure_id`` names the failure (the ``payment.failed`` event id, so a payment whose order
        fails twice counts twice); by default the payment counts once, however often it fails.
        """
        subjects = {Subject.USER.value: user_id, **({Subject.IP.value: ip} if ip else {})}
        event_id = failure_id or payment_id
        await asyncio.gather(
            *(
                table.add(subjects[subject.value], event_id, at=at)
                for table, subject in self._failures.values()
                if subject.value in subjects
            )
        )

    async def spike(self, at: datetime) -> tuple[int, list[int]]:
        """All payments in the volume window at ``at``, and the baseline windows before it (oldest first)."""
        rule = self.rules.spike
        if self._volume is None or rule is None:
            return 0, []
        current = await self._volume.get(ALL, at=at)
        baseline = await self._volume.history(ALL, at=at, windows=rule.baseline_windows)
        return current, baseline

    def spike_window_start(self, at: datetime) -> datetime:
        """Where the volume window holding ``at`` starts."""
        if self._volume is None:
            return at
        return from_epoch_ms(self._volume.window.span_at(epoch_ms(at)).start_ms)

    async def _failures_at(self, subjects: Mapping[str, str], at: datetime) -> dict[str, int]:
        present = {name: pair for name, pair in self._failures.items() if pair[1].value in subjects}
        counts = await asyncio.gather(
            *(table.get(subjects[subject.value], at=at) for table, subject in present.values())
        )
        return dict(zip(present, counts, strict=True))

    def _sliding(self, name: str, window_seconds: int, kind: Kind) -> Table:
        window = Sliding(timedelta(seconds=window_seconds))
        return Table(name, window=window, kind=kind, store=self._store, clock=self._clock.now)

    def _volume_table(self) -> Table | None:
        rule = self.rules.spike
        if rule is None:
            return None
        size = timedelta(seconds=rule.window_seconds)
        # Kept long enough that the whole trailing baseline is still readable.
        window = Tumbling(size, retention=size * (rule.baseline_windows + 1))
        name = f"fraud.volume.{rule.window_seconds}s"
        return Table(name, window=window, kind=Kind.COUNT, store=self._store, clock=self._clock.now)


class TableFraudScreen(FraudScreen):
    """Screens a payment by adding it to the fraud tables and judging what they observed."""

    def __init__(self, tables: FraudTables, *, enabled: bool = True) -> None:
        self._tables = tables
        self._enabled = enabled

    async def assess(self, attempt: PaymentAttempt) -> Assessment:
        if not self._enabled:
            return ALLOWED  # switched off: the tables are not touched either
        observed = await self._tables.record_attempt(attempt)
        return scoring.assess(self._tables.rules, attempt, observed)


def fraud_tables(ctx: AgentContext) -> FraudTables:
    """The fraud tables of the configured rules, on the context's table store."""
    return FraudTables(ctx.tables, rules=ctx.settings.fraud.rules, clock=ctx.clock, digest=ctx.digest)


def fraud_screen(ctx: AgentContext) -> TableFraudScreen:
    """The screen the payment service consults at create (``FRAUD_ENABLED=false``: allows everything)."""
    return TableFraudScreen(fraud_tables(ctx), enabled=ctx.settings.fraud.enabled)

"""Running a reconciliation: fetch the gateway's reports, apply their evidence, compare, record.

One run covers the half-open range ``[start, end)``:

1. take the range lock (``uow.reconciliation.lock_range``), or refuse with ``RunInProgress``;
2. record the run RUNNING (committed at once, so history shows it while it runs);
3. fetch the gateway's settlements, PG reconciliation and settlement reconciliation for the range;
4. apply the settlement evidence: ``PaymentService.settle`` for each settlement, so settled payments
   move to SETTLED and stuck PENDING ones are resolved with the gateway first;
5. read our records (webhooks that arrived before ``now - webhook_grace`` only) and ``compare``;
6. record the findings, resolve earlier open items this run no longer finds, alert on new ones;
7. finish SUCCEEDED with the counts and the input digest.

Anything that goes wrong finishes the run FAILED with a short error text and is raised again; a
failed run can be re-run (``rerun``) over the same range.

**The lock.** ``lock_range`` is a transaction-scoped advisory try-lock: it is released when the
transaction that took it ends. So ``run`` opens one unit of work that does nothing but hold the lock,
and keeps it open (``async with``) around the whole run, while every write of the run goes through
units of work of its own and commits as it goes (RUNNING is visible at once; settlements commit per
payment). A second worker, CLI or admin call over the same range then fails the try-lock for as long
as the first run lasts, and the lock cannot outlive a crashed process: its connection closes, the
transaction ends, the lock goes. A session-level lock would also work but must be released by hand on
the same pooled connection, which a cancelled task can skip; the transaction-scoped one cannot leak.
The cost is one pooled connection idle in a transaction for the seconds a run takes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Final

from payments.domain.alerts.model import Alert, Severity
from payments.domain.alerts.service import raise_alert
from payments.domain.clock import Clock
from payments.domain.errors import Conflict, NotFound, PaymentsError, Reject, ValidationFailed
from payments.domain.gateway import GatewaySettlement, PaymentGateway
from payments.domain.payment.service import SYSTEM, PaymentService
from payments.domain.reconciliation.model import (
    RULE_VERSION,
    ReconciliationRun,
    RunStatus,
    StoredItem,
    TheirRecords,
)
from payments.domain.reconciliation.report import input_digest
from payments.domain.reconciliation.rules import compare
from payments.domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

#: India has one time zone and no daylight saving; Cashfree's reports and our business days use it.
IST: Final = timezone(timedelta(hours=5, minutes=30), "IST")
#: One mismatch alert per range per this long: a re-run an hour later repeats the same news.
RECONCILIATION_ALERT_COOLDOWN: Final = timedelta(hours=1)
#: ``Alert.kind`` of "a run found new mismatches".
ALERT_KIND: Final = "reconciliation_mismatch"
#: ``Alert.source`` of reconciliation alerts.
ALERT_SOURCE: Final = "reconciliation"
#: Who may start a run (``ReconciliationRun.trigger``).
TRIGGER_SCHEDULE: Final = "schedule"
TRIGGER_CLI: Final = "cli"
TRIGGER_ADMIN: Final = "admin"
TRIGGER_RERUN: Final = "rerun"
#: A run over more than this is refused: it would hold the lock and the gateway for too long.
MAX_RANGE: Final = timedelta(days=92)
#: A bare date in a range bound (``parse_bound``).
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
#: The error text kept on a failed run is cut to this length.
_MAX_ERROR: Final = 500

_log = logging.getLogger(__name__)


class RunInProgress(Conflict):
    """A reconciliation of this range is already running."""

    code = "reconciliation_in_progress"


class RangeInvalid(ValidationFailed):
    """The range must start before it ends and span at most 92 days."""

    code = "reconciliation_range_invalid"


class ReconciliationFailed(PaymentsError):
    """The reconciliation run failed; its history entry says why."""

    code = "reconciliation_failed"


class ReconciliationService:
    """Runs reconciliations; see the module docstring for the steps and the lock."""

    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        gateway: PaymentGateway,
        payments: PaymentService,
        clock: Clock,
        settlement_sla: timedelta,
        webhook_grace: timedelta,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._gateway = gateway
        self._payments = payments
        self._clock = clock
        self._settlement_sla = settlement_sla
        self._webhook_grace = webhook_grace

    async def run(
        self, start: datetime, end: datetime, *, trigger: str, rerun_of: str | None = None
    ) -> ReconciliationRun:
        """Reconcile ``[start, end)`` now; the finished run. Raises ``RunInProgress`` if another run
        of this range holds the lock, and re-raises whatever made the run fail (after recording it)."""
        check_range(start, end)
        async with self._unit_of_work() as guard:
            if not await guard.reconciliation.lock_range(start, end):
                raise RunInProgress
            run = await self._start(start, end, trigger=trigger, rerun_of=rerun_of)
            try:
                return await self._reconcile(run)
            except BaseException as error:  # cancellation too: a run must never stay RUNNING
                await asyncio.shield(self._fail(run, error))
                raise

    async def rerun(self, run_id: str) -> ReconciliationRun:
        """Run the range of run ``run_id`` again (``NotFound`` if there is no such run)."""
        async with self._unit_of_work() as uow:
            earlier = await uow.reconciliation.get_run(run_id)
        return await self.run(earlier.start, earlier.end, trigger=TRIGGER_RERUN, rerun_of=earlier.run_id)

    async def _start(
        self, start: datetime, end: datetime, *, trigger: str, rerun_of: str | None
    ) -> ReconciliationRun:
        run = ReconciliationRun(
            run_id=f"rec_{uuid.uuid4().hex}",
            start=start,
            end=end,
            status=RunStatus.RUNNING,
            trigger=trigger,
            rule_version=RULE_VERSION,
            started_at=self._clock.now(),
            finished_at=None,
            input_digest=None,
            counts={},
            error=None,
            rerun_of=rerun_of,
        )
        async with self._unit_of_work() as uow:
            await uow.reconciliation.start_run(run)
        _log.info("reconciliation %s of [%s, %s) started (%s)", run.run_id, start, end, trigger)
        return run

    async def _reconcile(self, run: ReconciliationRun) -> ReconciliationRun:
        theirs = await self._fetch(run.start, run.end)
        await self._apply_settlements(theirs.settlements)
        now = self._clock.now()
        async with self._unit_of_work() as uow:
            ours = await uow.reconciliation.our_records(
                run.start, run.end, webhooks_before=now - self._webhook_grace, orders=_orders_named(theirs)
            )
        findings = compare(
            ours,
            theirs,
            start=run.start,
            end=run.end,
            now=now,
            settlement_sla=self._settlement_sla,
            webhook_grace=self._webhook_grace,
        )
        counts = dict(sorted(Counter(finding.kind.value for finding in findings).items()))
        digest = input_digest(ours, theirs)
        async with self._unit_of_work() as uow:
            items = await uow.reconciliation.record_findings(run, findings, now)
            seen = {finding.key for finding in findings}
            examined = {payment.payment_id for payment in ours.payments}
            resolved = await uow.reconciliation.resolve_unseen(run, seen, now, examined=examined)
            await self._alert_new(uow, run, items, now)
            finished = await self._finish(uow, run, status=RunStatus.SUCCEEDED, counts=counts, digest=digest)
        _log.info(
            "reconciliation %s succeeded: %d findings %s, %d resolved",
            run.run_id,
            len(findings),
            counts,
            resolved,
        )
        return finished

    async def _fetch(self, start: datetime, end: datetime) -> TheirRecords:
        settlements = await self._gateway.settlements(start, end)
        entries = await self._gateway.reconciliation(start, end)
        settlement_entries = await self._gateway.settlement_reconciliation(start, end)
        return TheirRecords(
            settlements=tuple(settlements),
            entries=tuple(entries),
            settlement_entries=tuple(settlement_entries),
        )

    async def _apply_settlements(self, settlements: Sequence[GatewaySettlement]) -> None:
        for settlement in settlements:
            try:
                await self._payments.settle(settlement, SYSTEM)
            except (NotFound, Reject, Conflict) as refused:
                # Not ours, or not settleable (a failed payment, another amount): evidence that
                # ``compare`` reports as a finding; it must not stop the rest of the run.
                _log.info(
                    "settlement %s of order %s not applied: %s",
                    settlement.settlement_id,
                    settlement.order_id,
                    refused.code,
                )

    async def _alert_new(
        self, uow: UnitOfWork, run: ReconciliationRun, items: Sequence[StoredItem], now: datetime
    ) -> None:
        # An item first found by this very run is news; one an earlier run found was alerted then.
        new = Counter(item.finding.kind.value for item in items if item.first_run_id == run.run_id)
        if not new:
            return
        alert = mismatch_alert(run, dict(sorted(new.items())), now)
        await raise_alert(uow, alert, cooldown=RECONCILIATION_ALERT_COOLDOWN)

    async def _finish(
        self,
        uow: UnitOfWork,
        run: ReconciliationRun,
        *,
        status: RunStatus,
        counts: Mapping[str, int],
        digest: str | None,
        error: str | None = None,
    ) -> ReconciliationRun:
        await uow.reconciliation.finish_run(
            run.run_id,
            status=status,
            counts=counts,
            input_digest=digest,
            finished_at=self._clock.now(),
            error=error,
        )
        return await uow.reconciliation.get_run(run.run_id)

    async def _fail(self, run: ReconciliationRun, error: BaseException) -> None:
        text = failure_text(error)
        _log.warning("reconciliation %s failed: %s", run.run_id, text)
        try:
            async with self._unit_of_work() as uow:
                await self._finish(uow, run, status=RunStatus.FAILED, counts={}, digest=None, error=text)
        except Exception:
            # The database is what failed, most likely; the run stays RUNNING in history and this
            # line is its record. The original error is what the caller sees.
            _log.exception("reconciliation %s: could not record the failure", run.run_id)


def check_range(start: datetime, end: datetime) -> None:
    """Refuse naive times, an empty or reversed range, and one longer than ``MAX_RANGE``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise RangeInvalid("the range must name its time zone")
    if not start < end:
        raise RangeInvalid("the range must start before it ends")
    if end - start > MAX_RANGE:
        raise RangeInvalid(f"the range may span at most {MAX_RANGE.days} days")


def parse_bound(text: str) -> datetime:
    """One end of a range as people write it: a date (``2026-11-25``, 00:00 IST that day) or an ISO 8601
    time (``2026-11-25T06:30+05:30``; UTC when it names no offset). ``RangeInvalid`` otherwise."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            moment = day_start(date.fromisoformat(text))
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        # Every bound is compared, locked and stored in UTC: one that falls outside years 1-9999 there
        # is refused here rather than failing in the database.
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RangeInvalid(f"not a date or time in years 1 to 9999: {text[:40]!r}") from None
    return moment


def day_start(day: date) -> datetime:
    """00:00 IST of ``day``: business days (and Cashfree's report days) start there."""
    return datetime.combine(day, time(), tzinfo=IST)


def scheduled_range(now: datetime, *, lookback_days: int) -> tuple[datetime, datetime]:
    """The scheduled run's range: the ``lookback_days`` whole IST days before today (IST)."""
    end = day_start(now.astimezone(IST).date())
    return end - timedelta(days=lookback_days), end


def mismatch_alert(run: ReconciliationRun, new: Mapping[str, int], now: datetime) -> Alert:
    """The admin alert of a run that found mismatches no earlier run had found."""
    subject = f"run:{_day(run.start)}..{_day(run.end)}"
    total = sum(new.values())
    return Alert(
        kind=ALERT_KIND,
        subject=subject,
        severity=Severity.WARNING,
        title=f"Reconciliation found {total} new mismatch{'es' if total != 1 else ''}",
        details={"runId": run.run_id, "counts": dict(new), "total": total},
        since=run.start,
        raised_at=now,
        source=ALERT_SOURCE,
    )


def failure_text(error: BaseException) -> str:
    """What a failed run records: our errors' code and message (written for clients, so free of
    secrets), else only the exception's type: driver and library messages may quote DSNs or keys."""
    if isinstance(error, PaymentsError):
        text = f"{error.code}: {error.message}"
    elif isinstance(error, asyncio.CancelledError):
        text = "cancelled"
    else:
        text = f"unexpected error ({type(error).__name__})"
    return text[:_MAX_ERROR]


def _day(moment: datetime) -> str:
    return moment.astimezone(IST).date().isoformat()


def _orders_named(theirs: TheirRecords) -> list[str]:
    """Every order the gateway's records name: ours for those may lie outside the run's range."""
    named = {settlement.order_id for settlement in theirs.settlements}
    named |= {entry.order_id for entry in (*theirs.entries, *theirs.settlement_entries) if entry.order_id}
    return sorted(named)

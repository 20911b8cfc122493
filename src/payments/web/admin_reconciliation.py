"""The admin routes of reconciliation (issue 9 §3): start runs, read history, download reports.

Every route is for the admin role (``require_admin``: 401 without a token, 403 for a user):

- ``POST /api/v1/admin/reconciliation/runs`` with ``{"from": ..., "to": ...}`` (a date, 00:00 IST that
  day, or an ISO 8601 time; UTC when it names no offset): runs the reconciliation of ``[from, to)``
  and answers **201** with the finished run;
- ``GET  /api/v1/admin/reconciliation/runs?limit=50``: run history, newest first;
- ``GET  /api/v1/admin/reconciliation/runs/{runId}``: one run;
- ``GET  /api/v1/admin/reconciliation/runs/{runId}/report.json`` and ``/report.csv``: the run's report,
  byte for byte what ``domain/reconciliation/report.py`` writes, as a download;
- ``POST /api/v1/admin/reconciliation/runs/{runId}/rerun``: runs that run's range again (201).

**Inline, not in the background.** A run over days of data takes seconds, so the request waits for
it and answers with the finished run: no task to track, nothing lost on shutdown (aiohttp lets
in-flight requests finish), and the answer already says what was found. A run of a range that is
running already answers 409 ``reconciliation_in_progress``; a run that fails answers its error (503
when a dependency was down) and stays in the history as FAILED with the reason. A client that hangs
up cancels the run, which the service records as FAILED ("cancelled").

Starting a run (or a re-run) writes an audit row, as every admin action does. Errors use the one
error body of the error middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from aiohttp import hdrs, web

from payments.domain.audit.model import AuditEntry
from payments.domain.clock import Clock
from payments.domain.errors import Conflict, ValidationFailed
from payments.domain.reconciliation.model import ReconciliationRun, RunStatus, StoredItem
from payments.domain.reconciliation.report import report_csv, report_json
from payments.domain.reconciliation.service import TRIGGER_ADMIN, parse_bound
from payments.domain.unit_of_work import UnitOfWorkFactory
from payments.web.admin import parse_limit
from payments.web.auth import Principal, require_admin
from payments.web.client_ip import client_ip
from payments.web.keys import TRACE_KEY
from payments.web.payment_requests import read_json


class Reconciliations(Protocol):
    """What the routes need of ``ReconciliationService``."""

    async def run(
        self, start: datetime, end: datetime, *, trigger: str, rerun_of: str | None = None
    ) -> ReconciliationRun: ...

    async def rerun(self, run_id: str) -> ReconciliationRun: ...


#: Runs reconciliations (``ReconciliationService``).
RECONCILIATIONS_KEY: Final[web.AppKey[Reconciliations]] = web.AppKey("admin_reconciliations")
#: Opens the read transactions of history and reports, and the audit rows' transactions.
RECONCILIATION_UNIT_OF_WORK_KEY: Final[web.AppKey[UnitOfWorkFactory]] = web.AppKey(
    "admin_reconciliation_unit_of_work"
)
#: The time audit rows are stamped with.
RECONCILIATION_CLOCK_KEY: Final[web.AppKey[Clock]] = web.AppKey("admin_reconciliation_clock")

RUNS_PATH: Final = "/api/v1/admin/reconciliation/runs"
#: Run ids are ours (``rec_`` and hex); anything else is 404 before the database is asked.
_RUN_SEGMENT: Final = "{runId:[A-Za-z0-9_-]{1,64}}"
#: Audit actions and the resource type they name.
RUN_ACTION: Final = "admin.reconciliation.run"
RERUN_ACTION: Final = "admin.reconciliation.rerun"
RUN_RESOURCE: Final = "reconciliation_run"
#: Longest ``from``/``to`` value read.
_MAX_BOUND: Final = 64
_MAX_USER_AGENT: Final = 512
#: Report formats: suffix -> (writer, content type).
_REPORTS: Final[Mapping[str, tuple[Callable[[ReconciliationRun, Sequence[StoredItem]], bytes], str]]] = {
    "json": (report_json, "application/json"),
    "csv": (report_csv, "text/csv; charset=utf-8"),
}

_log = logging.getLogger(__name__)


class RunRangeInvalid(ValidationFailed):
    """Give {"from": ..., "to": ...}, each a date (2026-11-25) or an ISO 8601 time."""

    code = "reconciliation_range_invalid"


class RunNotFinished(Conflict):
    """The run is still running; its report is ready when it has finished."""

    code = "reconciliation_not_finished"


def admin_reconciliation_routes(
    *, service: Reconciliations, unit_of_work: UnitOfWorkFactory, clock: Clock
) -> Callable[[web.Application], None]:
    """A route setup for ``create_app(extra_setups=...)`` that stores the dependencies, then adds routes."""

    def setup(app: web.Application) -> None:
        app[RECONCILIATIONS_KEY] = service
        app[RECONCILIATION_UNIT_OF_WORK_KEY] = unit_of_work
        app[RECONCILIATION_CLOCK_KEY] = clock
        setup_admin_reconciliation_routes(app)

    return setup


def setup_admin_reconciliation_routes(app: web.Application) -> None:
    """Add the routes; the app must hold the values under the three keys above."""
    router = app.router
    router.add_post(RUNS_PATH, start_run, name="admin.reconciliation.start")
    router.add_get(RUNS_PATH, list_runs, name="admin.reconciliation.runs")
    router.add_get(f"{RUNS_PATH}/{_RUN_SEGMENT}", get_run, name="admin.reconciliation.run")
    for suffix in _REPORTS:
        router.add_get(
            f"{RUNS_PATH}/{_RUN_SEGMENT}/report.{suffix}",
            _report(suffix),
            name=f"admin.reconciliation.report.{suffix}",
        )
    router.add_post(f"{RUNS_PATH}/{_RUN_SEGMENT}/rerun", rerun, name="admin.reconciliation.rerun")


async def start_run(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/reconciliation/runs``: reconcile ``[from, to)`` now (201, the run)."""
    principal = require_admin(request)
    start, end = parse_run_range(await read_json(request))
    run = await request.config_dict[RECONCILIATIONS_KEY].run(start, end, trigger=TRIGGER_ADMIN)
    await _audit(request, principal, RUN_ACTION, run)
    return _created(run)


async def rerun(request: web.Request) -> web.Response:
    """``POST /api/v1/admin/reconciliation/runs/{runId}/rerun``: run that range again (201, the new run)."""
    principal = require_admin(request)
    run = await request.config_dict[RECONCILIATIONS_KEY].rerun(request.match_info["runId"])
    await _audit(request, principal, RERUN_ACTION, run)
    return _created(run)


async def list_runs(request: web.Request) -> web.Response:
    """``GET /api/v1/admin/reconciliation/runs``: up to ``limit`` runs, newest first."""
    require_admin(request)
    limit = parse_limit(request.query.get("limit"))
    async with request.config_dict[RECONCILIATION_UNIT_OF_WORK_KEY]() as uow:
        runs = await uow.reconciliation.runs(limit)
    return web.json_response({"runs": [run_json(run) for run in runs]})


async def get_run(request: web.Request) -> web.Response:
    """``GET /api/v1/admin/reconciliation/runs/{runId}``: one run (404 if there is none)."""
    require_admin(request)
    async with request.config_dict[RECONCILIATION_UNIT_OF_WORK_KEY]() as uow:
        run = await uow.reconciliation.get_run(request.match_info["runId"])
    return web.json_response({"run": run_json(run)})


def _report(suffix: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    write, content_type = _REPORTS[suffix]

    async def report(request: web.Request) -> web.Response:
        """``GET .../runs/{runId}/report.<suffix>``: the finished run's report, as a download."""
        require_admin(request)
        run_id = request.match_info["runId"]
        async with request.config_dict[RECONCILIATION_UNIT_OF_WORK_KEY]() as uow:
            run = await uow.reconciliation.get_run(run_id)
            if run.status is RunStatus.RUNNING:
                raise RunNotFinished
            items = await uow.reconciliation.items(run_id)
        return web.Response(
            body=write(run, items),
            headers={
                hdrs.CONTENT_TYPE: content_type,
                hdrs.CONTENT_DISPOSITION: f'attachment; filename="reconciliation-{run_id}.{suffix}"',
                hdrs.CACHE_CONTROL: "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return report


def parse_run_range(body: Mapping[str, Any]) -> tuple[datetime, datetime]:
    """``from`` and ``to`` of a start request; only those two keys, each a short string."""
    if body.keys() != {"from", "to"}:
        raise RunRangeInvalid
    bounds = [body["from"], body["to"]]
    if not all(isinstance(bound, str) and 0 < len(bound) <= _MAX_BOUND for bound in bounds):
        raise RunRangeInvalid
    try:
        return parse_bound(bounds[0]), parse_bound(bounds[1])
    except ValidationFailed as refused:
        raise RunRangeInvalid(refused.message) from None


def run_json(run: ReconciliationRun) -> dict[str, Any]:
    """A run on the wire: camelCase, ISO 8601 times, and where its reports are."""
    base = f"{RUNS_PATH}/{run.run_id}"
    return {
        "runId": run.run_id,
        "from": run.start.isoformat(),
        "to": run.end.isoformat(),
        "status": str(run.status),
        "trigger": str(run.trigger),
        "ruleVersion": run.rule_version,
        "startedAt": run.started_at.isoformat(),
        "finishedAt": run.finished_at.isoformat() if run.finished_at else None,
        "inputDigest": run.input_digest,
        "counts": dict(sorted(run.counts.items())),
        "error": run.error,
        "rerunOf": run.rerun_of,
        "links": {"self": base, "reportJson": f"{base}/report.json", "reportCsv": f"{base}/report.csv"},
    }


def _created(run: ReconciliationRun) -> web.Response:
    location = f"{RUNS_PATH}/{run.run_id}"
    return web.json_response({"run": run_json(run)}, status=201, headers={hdrs.LOCATION: location})


async def _audit(request: web.Request, principal: Principal, action: str, run: ReconciliationRun) -> None:
    trace = request[TRACE_KEY]
    user_agent = request.headers.get(hdrs.USER_AGENT)
    after = {
        "runId": run.run_id,
        "from": run.start.isoformat(),
        "to": run.end.isoformat(),
        "status": str(run.status),
        "counts": dict(run.counts),
        "rerunOf": run.rerun_of,
    }
    entry = AuditEntry(
        actor_id=principal.user_id,
        action=action,
        resource_type=RUN_RESOURCE,
        resource_id=run.run_id,
        before_state=None,
        after_state=after,
        ip_address=client_ip(request),
        user_agent=user_agent[:_MAX_USER_AGENT] if user_agent else None,
        trace_id=trace.trace_id,
        request_id=trace.request_id,
        created_at=request.config_dict[RECONCILIATION_CLOCK_KEY].now(),
    )
    _log.info("%s %s by %s: %s", action, run.run_id, principal.user_id, after)
    async with request.config_dict[RECONCILIATION_UNIT_OF_WORK_KEY]() as uow:
        await uow.audit.append(entry)

"""Starting reconciliation runs, reading their history and downloading their reports (admin only)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payments.domain.reconciliation.report import report_csv, report_json
from payments.web.admin_reconciliation import parse_run_range
from tests.unit.web_admin_reconciliation._world import ADMIN, NOW, USER, USER_AGENT

RUNS = "/api/v1/admin/reconciliation/runs"
RANGE = {"from": "2026-11-20", "to": "2026-11-21"}


async def start(client: Any, world: Any, body: dict[str, Any] | None = None) -> Any:
    return await client.post(RUNS, json=body or RANGE, headers=world.headers())


async def test_an_admin_starts_a_run_and_gets_the_finished_run_with_an_audit_row(client, world):
    response = await start(client, world)

    assert response.status == 201
    run = (await response.json())["run"]
    assert run["status"] == "succeeded"
    assert run["trigger"] == "admin"
    assert (run["from"], run["to"]) == ("2026-11-20T00:00:00+05:30", "2026-11-21T00:00:00+05:30")
    assert run["counts"] == {}
    assert response.headers["Location"] == f"{RUNS}/{run['runId']}"
    assert run["links"]["reportCsv"] == f"{RUNS}/{run['runId']}/report.csv"
    [entry] = world.audit()
    assert (entry.action, entry.resource_id, entry.actor_id) == (
        "admin.reconciliation.run",
        run["runId"],
        ADMIN,
    )
    assert entry.user_agent == USER_AGENT
    assert entry.created_at == NOW


@pytest.mark.parametrize(
    "body",
    [
        {"from": "2026-11-21", "to": "2026-11-20"},
        {"from": "2026-11-20"},
        {"from": "2026-11-20", "to": "2026-11-21", "extra": 1},
        {"from": 20261120, "to": "2026-11-21"},
        {"from": "last week", "to": "2026-11-21"},
        {"from": "2026-01-01", "to": "2026-12-01"},
    ],
)
async def test_a_bad_range_is_refused_with_400_and_nothing_runs(client, world, body):
    response = await start(client, world, body)

    assert response.status == 400
    assert (await response.json())["error"]["code"] == "reconciliation_range_invalid"
    assert await world.history() == []
    assert world.audit() == []


async def test_history_lists_runs_newest_first_and_one_run_reads_alone(client, world):
    first = (await (await start(client, world)).json())["run"]
    world.clock.current = NOW.replace(hour=7)
    second = (await (await start(client, world, {"from": "2026-11-21", "to": "2026-11-22"})).json())["run"]

    listed = await client.get(RUNS, params={"limit": "1"}, headers=world.headers())
    one = await client.get(f"{RUNS}/{first['runId']}", headers=world.headers())

    assert [run["runId"] for run in (await listed.json())["runs"]] == [second["runId"]]
    assert (await one.json())["run"] == first


async def test_an_unknown_run_is_404_in_the_one_error_body(client, world):
    for path in ("rec_nope", "rec_nope/report.json", "rec_nope/report.csv"):
        response = await client.get(f"{RUNS}/{path}", headers=world.headers())

        assert response.status == 404
        error = (await response.json())["error"]
        assert error["code"] == "not_found"
        assert error["requestId"] == response.headers["X-Request-Id"]
    rerun = await client.post(f"{RUNS}/rec_nope/rerun", headers=world.headers())
    assert rerun.status == 404


async def test_reports_are_the_report_modules_bytes_as_downloads(client, world):
    run_id = (await (await start(client, world)).json())["run"]["runId"]
    async with world.store.unit_of_work() as uow:
        run, items = await uow.reconciliation.get_run(run_id), await uow.reconciliation.items(run_id)

    as_json = await client.get(f"{RUNS}/{run_id}/report.json", headers=world.headers())
    as_csv = await client.get(f"{RUNS}/{run_id}/report.csv", headers=world.headers())

    assert await as_json.read() == report_json(run, items)
    assert json.loads(await as_json.read())
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert as_json.headers["Content-Disposition"] == f'attachment; filename="reconciliation-{run_id}.json"'
    assert await as_csv.read() == report_csv(run, items)
    assert as_csv.headers["Content-Type"] == "text/csv; charset=utf-8"


async def test_a_rerun_runs_the_same_range_again_and_names_the_run_it_repeats(client, world):
    first = (await (await start(client, world)).json())["run"]

    response = await client.post(f"{RUNS}/{first['runId']}/rerun", headers=world.headers())

    assert response.status == 201
    rerun = (await response.json())["run"]
    assert (rerun["from"], rerun["to"], rerun["rerunOf"], rerun["trigger"]) == (
        first["from"],
        first["to"],
        first["runId"],
        "rerun",
    )
    assert rerun["runId"] != first["runId"]
    assert [entry.action for entry in world.audit()] == [
        "admin.reconciliation.run",
        "admin.reconciliation.rerun",
    ]


ROUTES = [
    ("POST", RUNS, RANGE),
    ("GET", RUNS, None),
    ("GET", f"{RUNS}/rec_1", None),
    ("GET", f"{RUNS}/rec_1/report.json", None),
    ("GET", f"{RUNS}/rec_1/report.csv", None),
    ("POST", f"{RUNS}/rec_1/rerun", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_refuses_anyone_but_an_admin(client, world, method, path, body):
    anonymous = await client.request(method, path, json=body)
    user = await client.request(method, path, json=body, headers=world.headers(USER, admin=False))

    assert anonymous.status == 401
    assert user.status == 403
    assert (await user.json())["error"]["code"] == "forbidden"
    assert await world.history() == []


async def test_a_run_of_a_range_already_running_is_409_and_records_nothing(client, world):
    first, last = parse_run_range(RANGE)
    async with world.store.unit_of_work() as holder:
        assert await holder.reconciliation.lock_range(first, last)

        response = await start(client, world)

    assert response.status == 409
    assert (await response.json())["error"]["code"] == "reconciliation_in_progress"
    assert await world.history() == []
    assert world.audit() == []

"""Reconciliation through the whole product, against the Cashfree sandbox.

A settlement Cashfree pays out arrives as a webhook and settles its payment; a payment Cashfree never
settled and one whose settlement disagrees with our amount are the only findings of a run over the
test's range; a re-run over the same inputs gives the same report, byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
import pytest

from tests.waiting import eventually

#: Cashfree's sandbox settles at once: a settlement is late past two seconds here.
SLA = timedelta(seconds=2)
RUNS = "/api/v1/admin/reconciliation/runs"


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    return {**environ, "RECONCILIATION_SETTLEMENT_SLA_HOURS": str(SLA.total_seconds() / 3600)}


async def settle_at_sandbox(stack, order_id: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.sandbox_url}/_sandbox/settle", json={"order_id": order_id}) as response,
    ):
        assert response.status == 200, await response.text()


async def status_of(stack, payment_id: str) -> str:
    [row] = await stack.rows("SELECT status FROM payments WHERE payment_id = $1", payment_id)
    return str(row["status"])


async def test_settlements_settle_payments_and_a_run_reports_exactly_what_is_wrong(stack):
    # Cashfree's times have whole seconds: the range starts at a whole second, or a payment paid in
    # this second would read as paid before the range.
    began = datetime.now(UTC).replace(microsecond=0)
    settled = await stack.paid("user-recon-1")
    unsettled = await stack.paid("user-recon-2")
    disputed = await stack.paid("user-recon-3", amount="250.00")

    for payment in (settled, disputed):
        await settle_at_sandbox(stack, payment["orderId"])
    for payment in (settled, disputed):
        await _until_settled(stack, payment["paymentId"])
    [row] = await stack.rows(
        "SELECT settlement_amount, utr FROM settlements WHERE payment_id = $1", settled["paymentId"]
    )
    assert row["utr"]
    assert row["settlement_amount"] < Decimal("499.00")  # net of Cashfree's fee and its tax

    # Cashfree's books now disagree with ours about the third payment's amount.
    ledger = stack.sandbox.ledger
    share = ledger.settlements[disputed["orderId"]]
    ledger.settlements[disputed["orderId"]] = dataclasses.replace(share, order_amount=Decimal("260.00"))
    # The unsettled payment is now past its settlement SLA.
    await eventually(
        lambda: datetime.now(UTC) > began + timedelta(seconds=3) + SLA, timeout=10, what="the SLA to pass"
    )

    admin = stack.headers("admin-recon", admin=True)
    window = {"from": began.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    created = await stack.api.post(RUNS, json=window, headers=admin)
    assert created.status == 201, await created.text()
    run = (await created.json())["run"]
    report = await (await stack.api.get(run["links"]["reportJson"], headers=admin)).read()

    findings = json.loads(report)["findings"]
    # The disputed payment twice: Cashfree's order amount, and the settlement we recorded from the
    # webhook no longer matching the one Cashfree now reports.
    assert [(f["kind"], f["payment_id"], f["difference"].get("check")) for f in findings] == [
        ("amount_mismatch", disputed["paymentId"], "order"),
        ("amount_mismatch", disputed["paymentId"], "recorded_settlement"),
        ("missing_settlement", unsettled["paymentId"], None),
    ], json.dumps(findings, indent=1)
    assert findings[0]["difference"]["delta"] == "10.00"
    assert run["status"] == "succeeded"

    rerun = await stack.api.post(f"{RUNS}/{run['runId']}/rerun", headers=admin)
    assert rerun.status == 201, await rerun.text()
    again = (await rerun.json())["run"]
    assert await (await stack.api.get(again["links"]["reportJson"], headers=admin)).read() == report
    csv_first = await (await stack.api.get(run["links"]["reportCsv"], headers=admin)).read()
    csv_again = await (await stack.api.get(again["links"]["reportCsv"], headers=admin)).read()
    assert csv_first == csv_again


async def _until_settled(stack, payment_id: str) -> None:
    async def settled() -> bool:
        return await status_of(stack, payment_id) == "SETTLED"

    await eventually(settled, timeout=30, what=f"{payment_id} to be SETTLED by the settlement webhook")

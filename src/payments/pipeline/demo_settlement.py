"""The demo's settlement and reconciliation: a payout arrives, one payment is deliberately left out of
it, and a reconciliation run's report shows exactly that payment missing its settlement.

1. Two customers pay; the sandbox settles ONE of them (``POST /_sandbox/settle`` with its order id)
   and sends its SETTLEMENT_SUCCESS webhook: that payment ends SETTLED, the other stays SUCCESS.
2. Once the other is past its settlement SLA, an admin starts a reconciliation run
   (``POST /api/v1/admin/reconciliation/runs``) over this part of the day; its ``report.json`` holds
   one finding, ``missing_settlement`` of the unsettled payment.

**The SLA.** The demo's web and worker processes run with a settlement SLA of ``SLA`` (the sandbox
settles at once). The rules time a payment by the gateway's completion time and judge it by our
clock, so the demo waits until our clock has passed the sandbox's time of payment plus ``SLA``. It
runs before the day's scenario, whose refunds move the sandbox's clock on a minute: after them,
every payout would be a minute late by the sandbox's reckoning and the wait a minute long.

**The range.** It starts on the whole second after this part begins (the gateway's reports are asked
for by whole seconds) and ends a minute past the later of both clocks, so that the records the
sandbox stamps with its own clock fall inside it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

import aiohttp

from payments.bridges.cashfree.client import CashfreeClient
from payments.pipeline.demo_scenario import SUCCEEDS, Customer, DemoClient, Outcome
from payments.pipeline.settings import Settings
from payments.web.admin_reconciliation import RUNS_PATH
from payments.web.auth import mint_token

#: A payment not settled this long after it was paid is missing its settlement.
SLA: Final = timedelta(seconds=2)
#: What the demo's web process (the admin API runs reconciliations there) and worker run with.
SETTLEMENT_ENVIRONMENT: Final[Mapping[str, str]] = {
    "RECONCILIATION_SETTLEMENT_SLA_HOURS": str(SLA.total_seconds() / 3600)
}
#: The settlement agent asks the gateway for the payout's orders and records them; the wait ends by this.
SETTLE_DEADLINE_SECONDS: Final = 30.0
#: Added to the range's end, past the later of our clock and the sandbox's.
RANGE_MARGIN: Final = timedelta(minutes=1)
#: The one finding the run must report: the payment left out of the payout.
WANTED_KIND: Final = "missing_settlement"

T = TypeVar("T")


async def run_settlement(settings: Settings, base_url: str, customers: Sequence[Customer]) -> Outcome:
    """Steps 1 and 2 of the module docstring; the first two of ``customers`` pay."""
    outcome = Outcome()
    began = await _next_second()
    sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
    cashfree = settings.cashfree
    async with (
        aiohttp.ClientSession(base_url) as api,
        aiohttp.ClientSession(sandbox) as control,
        CashfreeClient(
            base_url=cashfree.base_url,
            app_id=cashfree.app_id,
            secret_key=cashfree.secret_key.get_secret_value(),
        ) as gateway,
    ):
        settled_client, unsettled_client = (
            DemoClient(settings, api, customer, gateway=gateway) for customer in customers[:2]
        )
        settled = await _paid(settled_client, "799.00", outcome)
        unsettled = await _paid(unsettled_client, "349.00", outcome)
        paid_by_sandbox = await _sandbox_now(control)
        outcome.payment_ids += [settled["paymentId"], unsettled["paymentId"]]
        payout = await _settle(control, settled["orderId"])
        share: dict[str, Any] = next(iter(payout.get("settlements", [])), {})
        outcome.lines.append(
            f"  the sandbox settles {settled['paymentId'][:12]}... alone:"
            f" payout {share.get('cf_settlement_id')} (UTR {share.get('transfer_utr')}),"
            f" {share.get('order_amount')} - fee"
            f" {share.get('service_charge')} - GST {share.get('service_tax')}"
            f" = {share.get('settlement_amount')} INR"
        )
        seen = await _poll(
            lambda: settled_client.get(settled["paymentId"]),
            lambda payment: payment.get("status") == "SETTLED",
            SETTLE_DEADLINE_SECONDS,
        )
        outcome.expect(
            "  ... SETTLEMENT_SUCCESS webhook -> settlement agent: (status, settlementStatus)",
            (seen.get("status"), seen.get("settlementStatus")),
            ("SETTLED", "SETTLED"),
        )
        left = await unsettled_client.get(unsettled["paymentId"])
        outcome.expect(
            f"  ... and {unsettled['paymentId'][:12]}..., left out of the payout",
            left.get("status"),
            "SUCCESS",
        )
        await _past_the_sla(paid_by_sandbox, outcome)
        end = max(datetime.now(UTC), await _sandbox_now(control)) + RANGE_MARGIN
        await _reconcile(
            settings, api, base_url, bounds=(began, end), unsettled_id=unsettled["paymentId"], outcome=outcome
        )
    return outcome


async def _next_second() -> datetime:
    """The next whole second, once it has come: the gateway's reports are asked for by whole seconds,
    so the range starts on one that holds none of the day's earlier records."""
    began = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    await asyncio.sleep((began - datetime.now(UTC)).total_seconds())  # under a second, by our clock
    return began


async def _paid(client: DemoClient, amount: str, outcome: Outcome) -> dict[str, Any]:
    _, payment, _ = await client.create(amount, key=uuid.uuid4().hex)
    await client.pay(payment, SUCCEEDS)
    verified = await client.verify(payment["paymentId"])
    outcome.expect(
        f"{client.customer.name} pays {amount} INR ({payment['paymentId'][:12]}...)",
        verified.get("status"),
        "SUCCESS",
    )
    return payment


async def _settle(control: aiohttp.ClientSession, order_id: str) -> dict[str, Any]:
    async with control.post("/_sandbox/settle", json={"order_id": order_id}) as response:
        response.raise_for_status()
        # Amounts as exact decimals, as the sandbox wrote them (799.00, not 799.0).
        document: dict[str, Any] = await response.json(
            loads=functools.partial(json.loads, parse_float=Decimal)
        )
        return document


async def _sandbox_now(control: aiohttp.ClientSession) -> datetime:
    async with control.get("/_sandbox/clock") as response:
        response.raise_for_status()
        return datetime.fromtimestamp((await response.json())["epoch_ms"] / 1000, UTC)


async def _past_the_sla(paid_at: datetime, outcome: Outcome) -> None:
    """Wait until our clock is past ``paid_at`` (the sandbox's time) plus the SLA, and a second more."""
    wait = (paid_at + SLA + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
    outcome.lines.append(
        f"  waiting {max(wait, 0):.0f} s for it to pass its {SLA.total_seconds():.0f} s SLA by our clock"
        " (Cashfree's payment time against our clock)"
    )
    print("\n".join(outcome.lines), flush=True)  # the wait is long enough to show what came before
    outcome.lines.clear()
    if wait > 0:
        await asyncio.sleep(wait)  # real time has to pass: the SLA is judged by our clock


async def _reconcile(
    settings: Settings,
    api: aiohttp.ClientSession,
    base_url: str,
    *,
    bounds: tuple[datetime, datetime],
    unsettled_id: str,
    outcome: Outcome,
) -> None:
    """An admin runs a reconciliation of ``bounds``; its report must name ``unsettled_id`` alone."""
    token = mint_token(settings.security, user_id="demo-admin", admin=True, now=datetime.now(UTC))
    admin = {"Authorization": f"Bearer {token}"}
    wanted = {"from": bounds[0].isoformat(), "to": bounds[1].isoformat(timespec="seconds")}
    async with api.post(RUNS_PATH, json=wanted, headers=admin) as response:
        status, body = response.status, await response.json()
    run = body.get("run", {})
    outcome.expect(
        f"an admin runs a reconciliation of [{wanted['from']}, {wanted['to']}) (POST {RUNS_PATH})",
        (status, run.get("status")),
        (201, "succeeded"),
    )
    report_path = run.get("links", {}).get("reportJson", f"{RUNS_PATH}/{run.get('runId')}/report.json")
    async with api.get(report_path, headers=admin) as response:
        report: dict[str, Any] = await response.json(content_type=None)
    findings = report.get("findings", [])
    outcome.expect(
        "  ... its report holds one finding, the payment left out",
        [(finding["kind"], finding["payment_id"]) for finding in findings],
        [(WANTED_KIND, unsettled_id)],
    )
    for finding in findings:
        outcome.lines.append(f"        {finding['key']}: {finding['difference']}")
    outcome.lines.append(f"  report   {base_url}{report_path}")
    outcome.lines.append(
        '  fetch it curl -H "Authorization: Bearer $(.venv/bin/payments token --user admin --admin)" '
        f"{base_url}{report_path}"
    )


async def _poll(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float) -> T:
    """``read()`` until ``done`` says so or ``seconds`` pass; the last value read either way."""
    deadline = asyncio.get_running_loop().time() + seconds
    value = await read()
    while not done(value) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)  # polling another process's progress, with a deadline
        value = await read()
    return value

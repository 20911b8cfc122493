"""The demo's fraud burst: one address creates payments as many different customers, the way a
card-testing script does. Screening at create lets the ``ip_per_minute`` limit through and refuses
the rest; the refused payments are stored CANCELLED; admins get one alert, both in the list and on
the live stream an admin had open before the burst began.

The burst comes from an address drawn afresh each run from the 131,072 of 198.18.0.0/15: the fraud
tables in Redis and the alert's cooldown in PostgreSQL outlive a run, so a fixed address (or one of a
small range, met again within the hour) would be blocked, or flagged for review, from its first
payment the next time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import aiohttp

from payments.domain.fraud.scoring import OVERALL_KIND, OVERALL_SUBJECT
from payments.domain.payment.ids import payment_id_for
from payments.domain.payment.service import BLOCKED_REASON
from payments.pipeline.demo_scenario import DemoClient, Outcome, new_customer
from payments.pipeline.settings import Settings
from payments.web.admin_alerts import ALERT_EVENT, STREAM_PATH
from payments.web.auth import mint_token

#: The rule the burst runs into (``domain/fraud/rules.py``): payments a minute from one IP.
RULE: Final = "ip_per_minute"
#: Attempts past the limit: enough to show the block holds, not only that it happened once.
PAST_THE_LIMIT: Final = 4
#: The burst's addresses: 198.18.0.0/15 (RFC 2544), reserved for benchmarks and tests.
BURST_NETWORK: Final = ipaddress.ip_network("198.18.0.0/15")
#: The alert is stored with the blocked payment; the worker's outbox relay then publishes it, and
#: the web process streams it. Both waits end by this deadline.
ALERT_DEADLINE_SECONDS: Final = 30.0
ALERTS_PATH: Final = "/api/v1/admin/alerts?limit=200"
#: The volume-spike alert judges all traffic, an earlier run's still in its windows included: demos
#: run back to back make a spike of their own (one run is well under its minimum), so it is left out.
ALL_TRAFFIC: Final = f"{OVERALL_KIND}:{OVERALL_SUBJECT}"

T = TypeVar("T")


async def run_fraud_burst(settings: Settings, base_url: str, *, day_began: datetime) -> Outcome:
    """The burst (see the module docstring); ``day_began`` is when the demo's traffic began, so
    alerts raised before it (an earlier run's) are not taken for this run's."""
    outcome = Outcome()
    limit = _limit(settings)
    if limit is None or not settings.fraud.enabled:
        outcome.expect(f"fraud screening is on, with the {RULE} rule", False, True)
        return outcome
    address = str(BURST_NETWORK[secrets.randbelow(BURST_NETWORK.num_addresses - 2) + 1])
    token = mint_token(settings.security, user_id="demo-admin", admin=True, now=datetime.now(UTC))
    admin = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url) as api, api.get(STREAM_PATH, headers=admin) as stream:
        # The server subscribes to the feed before it answers: from here on, no alert is missed.
        outcome.expect(f"an admin follows GET {STREAM_PATH}", stream.status, 200)
        await _burst(settings, api, address, limit=limit, outcome=outcome)
        listed = await _alert_listed(api, admin, f"ip:{address}", day_began=day_began, outcome=outcome)
        try:
            streamed = await asyncio.wait_for(
                _alert_streamed(stream, f"ip:{address}", day_began), ALERT_DEADLINE_SECONDS
            )
        except TimeoutError:
            streamed = {}
    outcome.expect(
        "  ... and the same alert arrived live on the stream",
        streamed.get("alertId"),
        listed.get("alertId", "the id of the listed alert"),
    )
    return outcome


def _limit(settings: Settings) -> int | None:
    rules = [rule for rule in settings.fraud.rules.velocity if rule.name == RULE]
    return int(rules[0].limit) if rules else None


async def _burst(
    settings: Settings, api: aiohttp.ClientSession, address: str, *, limit: int, outcome: Outcome
) -> None:
    """``limit`` and ``PAST_THE_LIMIT`` more payments from ``address``, each as another customer."""
    run = secrets.token_hex(3)
    seen: list[str] = []
    blocked: list[tuple[DemoClient, str]] = []
    outcome.lines.append(f"  {limit + PAST_THE_LIMIT} payments from {address}, each as another customer:")
    for n in range(1, limit + PAST_THE_LIMIT + 1):
        customer = new_customer(f"Buyer {n}", user_id=f"buyer-{n:02d}-{run}", address=address)
        client = DemoClient(settings, api, customer)
        # The refusal names no payment; the id is the one the API derives from user and key.
        key = uuid.uuid4().hex
        status, body, _ = await client.create("1.00", key=key)
        payment_id = payment_id_for(customer.user_id, key)
        outcome.payment_ids.append(payment_id)
        error = body.get("error", {})
        seen.append(f"{status} {body.get('status') or error.get('code')}")
        outcome.lines.append(
            f"    {n:>2}. {customer.user_id}: {status} {body.get('status') or error.get('message')}"
        )
        if status == 403:
            blocked.append((client, payment_id))
    wanted = ["201 PENDING"] * limit + ["403 payment_blocked"] * PAST_THE_LIMIT
    outcome.expect(f"the burst from {address} is stopped after {limit}", _runs(seen), _runs(wanted))
    stored = [await client.get(payment_id) for client, payment_id in blocked]
    outcome.expect(
        f"  ... the {len(blocked)} refused payments are stored CANCELLED (GET /api/v1/payments/{{id}})",
        _runs([f"{payment.get('status')} ({payment.get('failureReason')})" for payment in stored]),
        _runs([f"CANCELLED ({BLOCKED_REASON})"] * PAST_THE_LIMIT),
    )


async def _alert_listed(
    api: aiohttp.ClientSession,
    admin: Mapping[str, str],
    subject: str,
    *,
    day_began: datetime,
    outcome: Outcome,
) -> dict[str, Any]:
    """Check the admin list holds one block alert about ``subject``, and none about the day's customers."""

    async def fraud_alerts() -> list[dict[str, Any]]:
        async with api.get(ALERTS_PATH, headers=admin) as response:
            alerts: list[dict[str, Any]] = (await response.json()).get("alerts", [])
        return [a for a in alerts if a.get("source") == "fraud" and _raised_since(a, day_began)]

    # Stored in the transaction that refused the payment, so it is there already; polled all the same.
    alerts = await _poll(
        fraud_alerts, lambda alerts: any(a["subject"] == subject for a in alerts), ALERT_DEADLINE_SECONDS
    )
    # The block is what this run claims; an address met by an earlier run within the hour could also
    # (rightly) be flagged for review, which is no concern of this check.
    about = [alert for alert in alerts if alert["subject"] == subject and alert["kind"] == "fraud_block"]
    outcome.expect(
        "admins are alerted once (GET /api/v1/admin/alerts)",
        [(alert["kind"], alert["subject"]) for alert in about],
        [("fraud_block", subject)],
    )
    if about:
        outcome.lines.append(f"        {about[0]['severity']}: {about[0]['title']}")
    others = sorted(
        f"{alert['kind']} {alert['subject']}"
        for alert in alerts
        if alert["subject"] not in {subject, ALL_TRAFFIC}
    )
    outcome.expect("  ... and no customer of the day raised a fraud alert", others, [])
    return about[0] if about else {}


async def _alert_streamed(
    stream: aiohttp.ClientResponse, subject: str, day_began: datetime
) -> dict[str, Any]:
    """The first ``event: alert`` frame about ``subject`` (the stream opens with older alerts)."""
    event = ""
    async for raw in stream.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == ALERT_EVENT:
            alert: dict[str, Any] = json.loads(line.removeprefix("data: "))
            if (
                alert.get("subject") == subject
                and alert.get("kind") == "fraud_block"
                and _raised_since(alert, day_began)
            ):
                return alert
        elif not line:
            event = ""  # a blank line ends the frame
    return {}


def _raised_since(alert: Mapping[str, Any], moment: datetime) -> bool:
    return datetime.fromisoformat(alert["raisedAt"]) >= moment


def _runs(values: Sequence[str]) -> str:
    """Consecutive equal values counted: ``["a", "a", "b"]`` -> ``"a x2, b x1"``."""
    return ", ".join(f"{value} x{len(list(group))}" for value, group in itertools.groupby(values))


async def _poll(read: Callable[[], Awaitable[T]], done: Callable[[T], bool], seconds: float) -> T:
    """``read()`` until ``done`` says so or ``seconds`` pass; the last value read either way."""
    deadline = asyncio.get_running_loop().time() + seconds
    value = await read()
    while not done(value) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)  # polling another process's progress, with a deadline
        value = await read()
    return value

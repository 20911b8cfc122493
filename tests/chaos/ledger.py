"""The ledger check every chaos test ends with, read from PostgreSQL, the sandbox and the broker.

``quiesce`` first waits (with a deadline) until nothing moves any more: the sandbox has delivered every
webhook (its clock is moved on, so Cashfree's retries and the refunds it finishes later come due), the
test's own deliveries are all answered 200, the outbox is published, no work or retry queue holds a
message and no agent of a live worker is handling one; twice in a row, as a message can be between a
queue and the outbox.

``check_ledger`` then asserts the five invariants over whole tables (the database is the test's own):

1. every webhook answered 200 was processed exactly once in effect: a ``webhook_logs`` row for each,
   every row SUCCESS and started once; one ``payment.success`` event and one ``payment.succeed``
   audit row per captured payment, none for the others; one audit row per refund step; an intact
   audit hash chain;
2. every payment's state is what the sandbox's order, attempts and refunds call for, with exactly
   the sandbox's attempts recorded and the capturing attempt named;
3. no refund exceeds its payment (SQL over the balance-holding refunds), every refund matches the
   sandbox's, and the API refused exactly the refunds that did not fit;
4. the outbox is empty;
5. every DLQ of the vhost is empty.

A failure names each broken invariant and the ids that broke it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import aio_pika
import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.rabbitmq import inspection
from payments.pipeline import bootstrap
from payments.pipeline.settings import Settings
from payments.pipeline.topology import WORK_QUEUES
from tests.chaos.flood import AMOUNT, CANCELLED, Flood, Plan
from tests.chaos.webhooks import APP_ID, SECRET
from tests.e2e.recovery_support import expected_status, over_refunded_payments, success_events
from tests.service_processes import Service

#: From the end of the flood to a system at rest, on two loaded cores.
QUIESCE_SECONDS: Final = 90.0
#: Sandbox seconds the clock moves on per look: past Cashfree's first webhook retry (2 minutes) and
#: the sandbox's ordinary refund delay (60 s).
CLOCK_STEP_SECONDS: Final = 121
#: Payment states that hold captured money.
CAPTURED: Final = frozenset({"SUCCESS", "PARTIALLY_REFUNDED", "REFUNDED", "SETTLED"})
#: Our refund state for each of the sandbox's refund statuses.
REFUND_STATES: Final = {"SUCCESS": "SUCCESS", "CANCELLED": "FAILED", "PENDING": "PROCESSING"}
#: How many ids a failure lists per problem.
SHOWN: Final = 8


class Database:
    """The test's own database, with the ``rows`` that ``recovery_support``'s helpers read through."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def rows(self, query: str, *args: Any) -> list[Any]:
        return list(await self.connection.fetch(query, *args))

    async def count(self, query: str, *args: Any) -> int:
        return int(await self.connection.fetchval(query, *args))


async def queue_depths(service: Service) -> dict[str, int]:
    """Every work, retry-tier and dead-letter queue of the vhost and its ready messages, from the broker
    (passive declares: ``rabbitmqctl list_queues`` reports quorum queues' counts seconds late)."""
    names = [name for spec in WORK_QUEUES for name in (spec.name, *spec.retry_queues, spec.dead_letter_queue)]
    connection = await aio_pika.connect(service.settings.rabbitmq.url.get_secret_value())
    try:
        depths = await inspection.queue_depths(connection, names)
    finally:
        await connection.close()
    assert not [d.name for d in depths if d.missing], f"queues missing: {depths}"
    return {depth.name: depth.messages for depth in depths}


async def worker_metric(port: int, sample: str) -> float:
    """The sum of one sample's values (all labels) in a worker's own /metrics."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200, await response.text()
        text = await response.text()
    return sum(
        found.value
        for family in text_string_to_metric_families(text)
        for found in family.samples
        if found.name == sample
    )


async def in_flight(service: Service) -> float:
    """Messages the live workers' agents are handling now (each instance takes its next prefetched
    message only once idle, so none waits unseen behind an idle agent)."""
    return sum(
        [
            await worker_metric(service.worker_ports[name], "payments_agent_in_flight_messages")
            for name in service.live_workers
        ]
    )


async def sandbox_deliveries(service: Service, *, advance: float = 0) -> Counter[str]:
    """The sandbox's webhook deliveries by state, after moving its clock on ``advance`` seconds."""
    async with aiohttp.ClientSession(service.sandbox_url) as session:
        if advance:
            async with session.post("/_sandbox/clock/advance", json={"seconds": advance}) as moved:
                assert moved.status == 200, await moved.text()
        async with session.get("/_sandbox/webhooks") as listed:
            assert listed.status == 200, await listed.text()
            return Counter(d["state"] for d in (await listed.json())["deliveries"])


async def quiesce(service: Service, dsn: str, flood: Flood) -> None:
    """Wait until the system is at rest (module docstring); a timeout shows what still moved."""
    assert flood.redelivery is not None, "the flood has not run"
    redelivery = flood.redelivery
    moving: dict[str, object] = {}
    calm = 0
    connection = await asyncpg.connect(dsn)
    db = Database(connection)

    async def at_rest() -> bool:
        nonlocal calm, moving
        # Cashfree resends what was not answered 200, on its schedule: the clock makes it due now.
        deliveries = await sandbox_deliveries(service, advance=CLOCK_STEP_SECONDS)
        await redelivery.round()
        depths = await queue_depths(service)
        moving = {
            "sandbox deliveries not delivered": sum(n for s, n in deliveries.items() if s != "delivered"),
            "test deliveries owed": not redelivery.settled,
            "unpublished outbox events": await db.count(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ),
            "webhooks received or processing": await db.count(
                "SELECT count(*) FROM webhook_logs WHERE processing_status IN ('RECEIVED', 'PROCESSING')"
            ),
            "queued messages": {q: n for q, n in depths.items() if n and not q.endswith(".dlq")},
            "messages being handled": await in_flight(service),
        }
        calm = calm + 1 if not any(moving.values()) else 0
        return calm >= 2

    try:
        await service.within(
            at_rest, timeout=QUIESCE_SECONDS, what="the system to come to rest", detail=lambda: f"; {moving}"
        )
    finally:
        await connection.close()


async def check_ledger(service: Service, dsn: str, flood: Flood) -> None:
    """Assert the five invariants (module docstring); one failure lists every broken one."""
    connection = await asyncpg.connect(dsn)
    try:
        db = Database(connection)
        async with CashfreeClient(base_url=service.cashfree_url, app_id=APP_ID, secret_key=SECRET) as cf:
            sandbox = {row["order_id"]: await _gateway_view(cf, row["order_id"]) for row in await _orders(db)}
        problems = {
            "1. every webhook answered 200 processed exactly once in effect": [
                *await _webhooks_processed_once(db, flood),
                *await _transitions_applied_once(db, service.settings),
            ],
            "2. every payment's state matches the sandbox's": await _payments_match(db, flood, sandbox),
            "3. no refund exceeds its payment; refunds match the sandbox's": await _refunds_match(
                db, flood, sandbox
            ),
            "4. the outbox is empty": [
                f"outbox {row['id']} {row['routing_key']}"
                for row in await db.rows("SELECT id, routing_key FROM outbox WHERE published_at IS NULL")
            ],
            "5. nothing in a DLQ": [
                f"{queue}: {depth}"
                for queue, depth in (await queue_depths(service)).items()
                if queue.endswith(".dlq") and depth
            ],
        }
    finally:
        await connection.close()
    broken = {name: found for name, found in problems.items() if found}
    assert not broken, service.failure(_report(broken))


def _report(broken: Mapping[str, list[str]]) -> str:
    lines = ["the ledger is wrong:"]
    for name, found in broken.items():
        more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
        lines.append(f"  invariant {name}: {len(found)} broken{more}")
        lines.extend(f"    {item}" for item in found[:SHOWN])
    return "\n".join(lines)


async def _orders(db: Database) -> list[Any]:
    return await db.rows("SELECT order_id FROM payments ORDER BY order_id")


async def _gateway_view(cf: CashfreeClient, order_id: str) -> dict[str, Any]:
    """What Cashfree's Get Order, Get Payments and Get Refunds say about one order."""
    order = await cf.get_order(order_id)
    attempts = await cf.list_payments(order_id)
    refunds = await cf.list_refunds(order_id)
    return {
        "status": order.order_status,
        "attempts": [(a.cf_payment_id, a.payment_status) for a in attempts],
        "refunds": {r.refund_id: (r.refund_status, r.refund_amount) for r in refunds},
    }


# --- 1. webhooks and transitions ----------------------------------------------------------------------


async def _webhooks_processed_once(db: Database, flood: Flood) -> list[str]:
    assert flood.redelivery is not None
    answered = {d.event_id for d in [*flood.tap.deliveries, *flood.redelivery.deliveries] if d.status == 200}
    logged = {
        row["event_id"]: (row["processing_status"], row["failure_reason"])
        for row in await db.rows("SELECT event_id, processing_status, failure_reason FROM webhook_logs")
    }
    started = Counter(
        row["event_id"]
        for row in await db.rows(
            "SELECT payload->>'eventId' AS event_id FROM outbox "
            "WHERE routing_key = 'webhook.cashfree.processing'"
        )
    )
    problems = [f"answered 200 but never logged: {event}" for event in sorted(answered - set(logged))]
    problems += [
        f"{event} is {status} ({reason})" for event, (status, reason) in logged.items() if status != "SUCCESS"
    ]
    problems += [f"{event} started {started[event]} times" for event in logged if started[event] != 1]
    return problems


async def _transitions_applied_once(db: Database, settings: Settings) -> list[str]:
    payments = {
        row["payment_id"]: row["status"] for row in await db.rows("SELECT payment_id, status FROM payments")
    }
    captured = {payment for payment, status in payments.items() if status in CAPTURED}
    succeeded = await success_events(db, list(payments))
    problems = [
        f"payment {payment}: {succeeded.get(payment, 0)} payment.success events"
        for payment in payments
        if succeeded.get(payment, 0) != (payment in captured)
    ]
    audited = Counter(
        (row["resource_id"], row["action"])
        for row in await db.rows("SELECT resource_id, action FROM audit_logs")
    )
    problems += [
        f"payment {payment}: {audited[payment, 'payment.succeed']} payment.succeed audit rows"
        for payment in payments
        if audited[payment, "payment.succeed"] != (payment in captured)
    ]
    refunds = {
        row["refund_id"]: row["status"] for row in await db.rows("SELECT refund_id, status FROM refunds")
    }
    for refund, status in refunds.items():
        wanted = {"refund.initiated": 1, "refund.succeed": int(status == "SUCCESS"), "refund.submit": None}
        for action, count in wanted.items():
            if count is not None and audited[refund, action] != count:
                problems.append(f"refund {refund} ({status}): {audited[refund, action]} {action} audit rows")
        if audited[refund, "refund.submit"] > 1:
            problems.append(f"refund {refund}: submitted {audited[refund, 'refund.submit']} times")
    chain = await bootstrap.run_audit_verify(settings)
    if not chain.intact:
        problems.append(f"audit hash chain broken: {chain}")
    return problems


# --- 2. payments ----------------------------------------------------------------------------------


def _status_for(view: Mapping[str, Any], amount: Decimal) -> str:
    """The payment state the sandbox's order, attempts and refunds call for."""
    if view["status"] != "PAID":
        return expected_status(view["attempts"])
    back = sum((amount for status, amount in view["refunds"].values() if status == "SUCCESS"), Decimal(0))
    if back == 0:
        return "SUCCESS"
    return "REFUNDED" if back >= amount else "PARTIALLY_REFUNDED"


async def _payments_match(db: Database, flood: Flood, sandbox: Mapping[str, Any]) -> list[str]:
    rows = await db.rows("SELECT payment_id, order_id, status, amount, gateway_payment_id FROM payments")
    attempts: dict[str, set[tuple[str, str]]] = {row["payment_id"]: set() for row in rows}
    for row in await db.rows("SELECT payment_id, provider_transaction_id, status FROM transactions"):
        attempts[row["payment_id"]].add((row["provider_transaction_id"], row["status"]))
    made = {journey.payment_id for journey in flood.journeys}
    problems = [f"payment {p} made by no journey" for p in sorted(set(attempts) - made)]
    problems += [f"journey's payment {p} not stored" for p in sorted(made - set(attempts), key=str)]
    for row in rows:
        view, payment = sandbox[row["order_id"]], row["payment_id"]
        wanted = _status_for(view, row["amount"])
        if row["status"] != wanted:
            problems.append(
                f"payment {payment} is {row['status']}; the sandbox's order {view} calls for {wanted}"
            )
        if attempts[payment] != set(view["attempts"]):
            problems.append(
                f"payment {payment} records attempts {attempts[payment]}; sandbox {view['attempts']}"
            )
        paid_by = next((cf_id for cf_id, status in view["attempts"] if status == "SUCCESS"), None)
        if row["gateway_payment_id"] != paid_by:
            problems.append(f"payment {payment} names attempt {row['gateway_payment_id']}; sandbox {paid_by}")
    return problems


# --- 3. refunds ---------------------------------------------------------------------------------------


async def _refunds_match(db: Database, flood: Flood, sandbox: Mapping[str, Any]) -> list[str]:
    problems = [
        f"payment {row['payment_id']}: {row['refunded']} refunded of {row['amount']}"
        for row in await over_refunded_payments(db)
    ]
    rows = await db.rows("SELECT refund_id, order_id, status, amount FROM refunds")
    ours = {(row["order_id"], row["refund_id"]): row for row in rows}
    theirs = {
        (order, refund): seen for order, view in sandbox.items() for refund, seen in view["refunds"].items()
    }
    problems += [
        f"refund {refund} of order {order} unknown to us" for order, refund in set(theirs) - set(ours)
    ]
    for key, row in ours.items():
        status, amount = theirs.get(key, ("(none)", None))
        wanted = REFUND_STATES.get(status, "FAILED")
        if row["status"] != wanted or (amount is not None and amount != row["amount"]):
            problems.append(f"refund {key[1]} is {row['status']} {row['amount']}; sandbox {status} {amount}")
    stored = {row["refund_id"] for row in rows}
    for journey in flood.journeys:
        problems += [f"refund {r} answered 201 but not stored" for r in journey.refunds if r not in stored]
        refused = [code for _, code in journey.refused]
        if sorted(refused) != ["refund_exceeds_balance"] * _refusals(journey.plan):
            problems.append(f"journey {journey.number} ({journey.plan.name}): refused {journey.refused}")
    return problems


def _refusals(plan: Plan) -> int:
    """How many of the plan's refunds do not fit: a round's refunds race for what is left, and a refund
    the gateway cancels gives its amount back before the next round."""
    left, refused = AMOUNT, 0
    for round_ in plan.refunds:
        for amount, reason in round_:
            if Decimal(amount) > left:
                refused += 1
            elif reason != CANCELLED:
                left -= Decimal(amount)
    return refused

"""Webhook flood (issue 13 §2): tens of thousands of signed Cashfree deliveries, 30% of them
duplicates, shuffled so that a payment's events arrive out of order, for payments that exist.

The events are the ones the sandbox itself rendered for real attempts (declined, dropped by the
customer, then perhaps paid), held back with its ``withhold_webhooks`` fault and delivered by the
test, concurrently and in random order. It proves, from the database and the test's own vhost, that
every delivery is answered 200 (a duplicate too); that each event has one ``webhook_logs`` row, ended
in SUCCESS, and was started once (one ``webhook.cashfree.processing`` event); that every payment ends
in the state the gateway's attempts call for, with one ``payment.success`` event per paid payment and
one transaction row per gateway attempt; and that no dead-letter queue holds anything.
``tests/e2e/test_webhook_flow.py`` has the thousand-delivery version this scales up.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from tests.e2e.recovery_support import dead_letters, deliver, success_events
from tests.e2e.stack import Stack
from tests.stress.support import (
    attempt_plan,
    concurrently,
    expected,
    finished_states,
    forms,
    sandbox_attempts,
    with_attempts,
)
from tests.waiting import eventually

#: The share of deliveries that repeat an event delivered already.
DUPLICATES = 0.3


@dataclass(frozen=True)
class Flood:
    deliveries: int
    #: Deliveries in flight at once (Cashfree sends from many connections).
    connections: int = 40
    #: How long the agents may take to work through the flood.
    drain_seconds: float = 90.0

    @property
    def events(self) -> int:
        return round(self.deliveries * (1 - DUPLICATES))


@pytest.mark.parametrize(
    "flood",
    forms(
        Flood(deliveries=1_200),
        Flood(deliveries=20_000, drain_seconds=900.0),
    ),
)
async def test_a_flood_of_shuffled_duplicated_webhooks_has_one_effect_per_event(
    stack: Stack, flood: Flood
) -> None:
    rng = random.Random(20_000)
    payments, events = await with_attempts(stack, _plans(flood, rng))
    deliveries = events + rng.choices(events, k=flood.deliveries - len(events))
    rng.shuffle(deliveries)

    statuses = await concurrently(
        [lambda w=webhook: deliver(stack, w.body, w.key) for webhook in deliveries], limit=flood.connections
    )

    assert Counter(statuses) == {200: len(deliveries)}, "every delivery, duplicates too, is answered 200"
    event_ids = [webhook.event_id for webhook in events]
    assert len(set(event_ids)) == len(events)
    states: dict[str, int] = await eventually(
        lambda: finished_states(stack, event_ids), timeout=flood.drain_seconds, interval=0.5, what="the flood"
    )
    assert states == {"SUCCESS": len(events)}, "one webhook_logs row per event, each processed"
    await _assert_payments_follow_the_gateway(stack, payments)
    processing = await stack.rows(
        "SELECT payload->>'eventId' AS id, count(*) AS n FROM outbox "
        "WHERE routing_key = 'webhook.cashfree.processing' AND payload->>'eventId' = ANY($1::text[]) "
        "GROUP BY 1",
        event_ids,
    )
    assert Counter({row["id"]: row["n"] for row in processing}) == Counter(event_ids), (
        "each event was started once, whatever its duplicates"
    )
    assert await dead_letters(stack) == {}


def _plans(flood: Flood, rng: random.Random) -> list[list[str]]:
    """Attempt plans whose webhooks number ``flood.events`` (the last is cut short to make it exact)."""
    plans: list[list[str]] = []
    while (missing := flood.events - sum(map(len, plans))) > 0:
        plans.append(attempt_plan(rng)[:missing])
    return plans


async def _assert_payments_follow_the_gateway(stack: Stack, payments: list[dict[str, str]]) -> None:
    ids = [payment["paymentId"] for payment in payments]
    rows = await stack.rows(
        "SELECT payment_id, order_id, status FROM payments WHERE payment_id = ANY($1)", ids
    )
    assert len(rows) == len(ids)
    wanted = {row["payment_id"]: expected(stack, row["order_id"]) for row in rows}
    assert {row["payment_id"]: row["status"] for row in rows} == wanted
    paid = [payment_id for payment_id, status in wanted.items() if status == "SUCCESS"]
    assert 0.5 < len(paid) / len(ids) < 0.9, "the flood pays about 70% of the payments"
    assert await success_events(stack, ids) == dict.fromkeys(paid, 1), "one payment.success per paid payment"
    recorded = await stack.rows(
        "SELECT p.order_id, t.provider_transaction_id, t.status FROM transactions t "
        "JOIN payments p USING (payment_id) WHERE t.payment_id = ANY($1)",
        ids,
    )
    attempts = Counter(
        (row["order_id"], *attempt) for row in rows for attempt in sandbox_attempts(stack, row["order_id"])
    )
    assert (
        Counter((r["order_id"], r["provider_transaction_id"], r["status"]) for r in recorded) == attempts
    ), "one transaction row per gateway attempt"

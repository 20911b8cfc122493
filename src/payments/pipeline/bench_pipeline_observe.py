"""What ``payments bench`` reads from the running pipeline: each payment's outcome from PostgreSQL
(asyncpg, not logs), the workers' agent counters from their /metrics, and the end-to-end latencies
those give."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import aiohttp
import asyncpg

from payments.domain.invoice.events import PAYMENT_SUCCESS_EMAIL
from payments.domain.notification.model import EmailKind
from payments.pipeline.bench_pipeline_report import agent_message_counts
from payments.pipeline.bench_processes import HOST, POLL_SECONDS

#: How long the pipeline gets to finish a phase's payments: a minute, plus a second per payment.
DRAIN_BASE_SECONDS: Final = 60.0

#: Each bench order's payment: its status and last change, and when its payment_success email was sent.
#: An email names the event that asked for it (emails.event_id); that event's outbox row names the
#: payment. Only events published since the phase began are read (the partial published_at index).
SELECT_OUTCOMES: Final = """
WITH asked AS (
    SELECT event_id, payload->>'paymentId' AS payment_id
    FROM outbox
    WHERE published_at >= $2 AND routing_key = $3
)
SELECT p.order_id, p.status, p.updated_at, e.sent_at
FROM payments AS p
LEFT JOIN asked AS a ON a.payment_id = p.payment_id
LEFT JOIN emails AS e ON e.event_id = a.event_id AND e.kind = $4 AND e.status = 'SENT'
WHERE p.order_id = ANY($1::text[])
"""


@dataclass(frozen=True)
class Outcome:
    """One payment as PostgreSQL has it: when it became SUCCESS, when its email was sent (or None)."""

    final_at: datetime | None
    emailed_at: datetime | None


def end_to_end_latencies(
    outcomes: Mapping[str, Outcome], answered_at: Mapping[str, float]
) -> tuple[list[float], list[float]]:
    """t1 - t0 and t2 - t0 of every payment whose webhook was answered and that got that far."""
    to_final, to_email = [], []
    for order_id, t0 in answered_at.items():
        outcome = outcomes.get(order_id)
        if outcome and outcome.final_at:
            to_final.append(outcome.final_at.timestamp() - t0)
        if outcome and outcome.emailed_at:
            to_email.append(outcome.emailed_at.timestamp() - t0)
    return to_final, to_email


async def drain(pool: asyncpg.Pool, orders: Sequence[str], since: datetime) -> dict[str, Outcome]:
    """Poll PostgreSQL until every payment is final and emailed, or the deadline; what it holds then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_BASE_SECONDS + len(orders)
    while True:
        outcomes = await _outcomes(pool, orders, since)
        done = sum(1 for o in outcomes.values() if o.final_at and o.emailed_at)
        if done == len(orders) or loop.time() > deadline:
            return outcomes
        await asyncio.sleep(POLL_SECONDS)  # the pipeline's own processes do the work; we only look


async def _outcomes(pool: asyncpg.Pool, orders: Sequence[str], since: datetime) -> dict[str, Outcome]:
    # A second of slack: the relay stamps published_at from its own clock reading.
    rows = await pool.fetch(
        SELECT_OUTCOMES,
        list(orders),
        since - timedelta(seconds=1),
        PAYMENT_SUCCESS_EMAIL,
        EmailKind.PAYMENT_SUCCESS.value,
    )
    return {
        row["order_id"]: Outcome(
            final_at=row["updated_at"] if row["status"] == "SUCCESS" else None, emailed_at=row["sent_at"]
        )
        for row in rows
    }


async def scrape(metrics_ports: Sequence[int]) -> dict[tuple[str, str], float]:
    """Every worker's ``payments_agent_messages_total``, added up."""
    totals: dict[tuple[str, str], float] = {}
    async with aiohttp.ClientSession() as session:
        for port in metrics_ports:
            async with session.get(f"http://{HOST}:{port}/metrics") as response:
                page = await response.text()
            for key, value in agent_message_counts(page).items():
                totals[key] = totals.get(key, 0.0) + value
    return totals

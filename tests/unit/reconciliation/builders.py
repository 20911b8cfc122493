"""A clean day of records on both sides, and small builders to spoil it one way at a time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from payments.domain.gateway import GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money
from payments.domain.reconciliation.model import (
    Finding,
    OurPayment,
    OurRecords,
    OurRefund,
    OurSettlement,
    OurWebhook,
    TheirRecords,
)
from payments.domain.reconciliation.rules import compare

START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=1)
NOW = END + timedelta(days=3)
SLA = timedelta(days=2)
GRACE = timedelta(hours=1)


def inr(amount: str) -> Money:
    return Money.of(amount, "INR")


def payment(n: int, *, status: str = "SUCCESS", amount: str = "100.00", **changes: Any) -> OurPayment:
    base = OurPayment(
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        amount=inr(amount),
        status=status,
        successful_attempt_ids=(f"cf_{n}",) if status != "FAILED" else (),
        succeeded_at=START + timedelta(hours=n) if status != "FAILED" else None,
    )
    return replace(base, **changes)


def payment_row(n: int, *, amount: str = "100.00", **changes: Any) -> ReconciliationEntry:
    base = ReconciliationEntry(
        event_id=f"cf_{n}",
        event_type="PAYMENT",
        amount=inr(amount),
        settlement_amount=inr("97.64"),
        status="SUCCESS",
        occurred_at=START + timedelta(hours=n),
        order_id=f"ord_{n}",
        attempt_id=f"cf_{n}",
        refund_id=None,
        settlement_id=None,
        utr=None,
        raw={"event_id": f"cf_{n}", "order_id": f"ord_{n}"},
    )
    return replace(base, **changes)


def settlement(n: int, *, after: timedelta = timedelta(days=1), **changes: Any) -> GatewaySettlement:
    base = GatewaySettlement(
        settlement_id=f"set_{n}",
        order_id=f"ord_{n}",
        attempt_id=f"cf_{n}",
        order_amount=inr("100.00"),
        service_charge=inr("2.00"),
        service_tax=inr("0.36"),
        settlement_amount=inr("97.64"),
        utr=f"UTR{n}",
        paid_at=START + timedelta(hours=n),
        settled_at=START + timedelta(hours=n) + after,
    )
    return replace(base, **changes)


def refund(n: int, *, status: str = "SUCCESS", amount: str = "10.00", **changes: Any) -> OurRefund:
    base = OurRefund(
        refund_id=f"ref_{n}",
        payment_id=f"pay_{n}",
        order_id=f"ord_{n}",
        amount=inr(amount),
        status=status,
        gateway_refund_id=f"cfr_{n}",
    )
    return replace(base, **changes)


def refund_row(
    n: int, *, status: str = "SUCCESS", amount: str = "10.00", **changes: Any
) -> ReconciliationEntry:
    base = ReconciliationEntry(
        event_id=f"cfr_{n}",
        event_type="REFUND",
        amount=inr(amount),
        settlement_amount=inr("-" + amount),
        status=status,
        occurred_at=START + timedelta(hours=n, minutes=30),
        order_id=f"ord_{n}",
        attempt_id=f"cf_{n}",
        refund_id=f"ref_{n}",
        settlement_id=None,
        utr=None,
    )
    return replace(base, **changes)


def webhook(n: int, *, status: str = "SUCCESS", **changes: Any) -> OurWebhook:
    base = OurWebhook(
        webhook_id=n,
        event_type="PAYMENT_SUCCESS_WEBHOOK",
        status=status,
        received_at=START + timedelta(hours=n),
        order_id=f"ord_{n}",
    )
    return replace(base, **changes)


def clean_ours() -> OurRecords:
    """pay_1 SUCCESS, pay_2 SETTLED (recorded settlement) with a refund, pay_3 FAILED; webhooks done."""
    settled = OurSettlement(
        settlement_id="set_2",
        attempt_id="cf_2",
        amount=inr("97.64"),
        utr="UTR2",
        settled_at=START + timedelta(hours=2, days=1),
    )
    return OurRecords(
        payments=(
            payment(1),
            payment(2, status="SETTLED", settlements=(settled,)),
            payment(3, status="FAILED"),
        ),
        refunds=(refund(2),),
        webhooks=(webhook(1), webhook(2), webhook(3)),
    )


def clean_theirs() -> TheirRecords:
    batch = ReconciliationEntry(
        event_id="set_batch_1",
        event_type="SETTLEMENT",
        amount=inr("195.28"),
        settlement_amount=inr("195.28"),
        status="SUCCESS",
        occurred_at=START + timedelta(days=1, hours=3),
        order_id=None,
        attempt_id=None,
        refund_id=None,
        settlement_id="set_batch_1",
        utr="UTRB",
    )
    return TheirRecords(
        settlements=(settlement(1), settlement(2)),
        entries=(payment_row(1), payment_row(2), refund_row(2), batch),
        settlement_entries=(
            payment_row(1, settlement_id="set_1", utr="UTR1"),
            payment_row(2, settlement_id="set_2", utr="UTR2"),
        ),
    )


def run_compare(ours: OurRecords, theirs: TheirRecords, *, now: datetime = NOW) -> list[Finding]:
    return compare(ours, theirs, start=START, end=END, now=now, settlement_sla=SLA, webhook_grace=GRACE)

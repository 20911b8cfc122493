"""Reconciliation's values: both sides' records, findings, runs and stored items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from payments.domain.gateway import GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money

#: Stored with every run and printed in every report; bump it when a rule changes its findings.
RULE_VERSION: Final = "1"


class MismatchKind(StrEnum):
    #: a captured payment past the settlement SLA with no settlement
    MISSING_SETTLEMENT = "missing_settlement"
    #: settled, but later than the SLA after success
    DELAYED_SETTLEMENT = "delayed_settlement"
    #: one order or gateway payment id recorded twice, or one order charged twice at the gateway
    DUPLICATE_TRANSACTION = "duplicate_transaction"
    #: status or amount differ between our refund and the gateway's, or one side lacks it
    INCONSISTENT_REFUND = "inconsistent_refund"
    #: a gateway payment or settlement for an order we do not know (or never recorded as paid)
    ORPHAN_GATEWAY_PAYMENT = "orphan_gateway_payment"
    #: our captured payment that the gateway reports nothing about in the range
    ORPHAN_PAYMENT = "orphan_payment"
    #: a webhook log not SUCCESS after the grace period
    UNPROCESSED_WEBHOOK = "unprocessed_webhook"
    #: order, payment or settlement amounts that do not add up
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One discrepancy; ``key`` names it the same way in every run that finds it again."""

    kind: MismatchKind
    key: str
    payment_id: str | None
    #: Our record(s), as JSON-friendly views (amounts as strings, times ISO 8601 UTC).
    ours: Mapping[str, Any] | None
    #: The gateway's record(s), in the same form.
    theirs: Mapping[str, Any] | None
    #: What differs, in the same form.
    difference: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class OurSettlement:
    settlement_id: str
    #: The gateway payment id the settlement paid out.
    attempt_id: str | None
    amount: Money
    utr: str | None
    settled_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class OurPayment:
    payment_id: str
    order_id: str
    amount: Money
    #: A ``PaymentState`` value.
    status: str
    #: Gateway payment ids of the attempts we recorded as successful.
    successful_attempt_ids: tuple[str, ...]
    succeeded_at: datetime | None
    settlements: tuple[OurSettlement, ...] = ()
    #: False for a payment read only because the gateway's records in the range name its order (a
    #: payout for an earlier day's payment): judged for its amounts and settlement, never an orphan.
    in_range: bool = True


@dataclass(frozen=True, kw_only=True)
class OurRefund:
    refund_id: str
    payment_id: str
    order_id: str
    amount: Money
    #: A ``RefundState`` value.
    status: str
    gateway_refund_id: str | None


@dataclass(frozen=True, kw_only=True)
class OurWebhook:
    webhook_id: int
    event_type: str
    #: A ``WebhookStatus`` value.
    status: str
    received_at: datetime
    order_id: str | None


@dataclass(frozen=True, kw_only=True)
class OurRecords:
    payments: tuple[OurPayment, ...]
    refunds: tuple[OurRefund, ...]
    webhooks: tuple[OurWebhook, ...]


@dataclass(frozen=True, kw_only=True)
class TheirRecords:
    #: ``GET /settlements``: one row per settled order.
    settlements: tuple[GatewaySettlement, ...]
    #: ``POST /recon``: one row per account event (PAYMENT, REFUND, SETTLEMENT batch, …).
    entries: tuple[ReconciliationEntry, ...]
    #: ``POST /settlement/recon``: one row per event inside a settlement.
    settlement_entries: tuple[ReconciliationEntry, ...]


class RunStatus(StrEnum):
    RUNNING = "running"  #: started, not finished (or its worker died; a rerun replaces it)
    SUCCEEDED = "succeeded"  #: compared and stored; its report is final
    FAILED = "failed"  #: stopped by an error, kept in ``error``; may be re-run


@dataclass(frozen=True, kw_only=True)
class ReconciliationRun:
    run_id: str
    #: The range compared, half-open: ``[start, end)``.
    start: datetime
    end: datetime
    status: RunStatus
    #: Who started it: ``schedule``, ``cli``, ``admin`` or ``rerun``.
    trigger: str
    rule_version: str
    started_at: datetime
    finished_at: datetime | None = None
    #: ``report.input_digest`` of both sides' records, once loaded.
    input_digest: str | None = None
    #: Findings per ``MismatchKind`` value.
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    #: The failed run this one re-runs.
    rerun_of: str | None = None


class Resolution(StrEnum):
    OPEN = "open"  #: the last run that looked still found it
    RESOLVED = "resolved"  #: a later run no longer found it (kept, never deleted)


@dataclass(frozen=True, kw_only=True)
class StoredItem:
    """A finding as kept between runs, identified across runs by ``finding.kind`` and ``finding.key``."""

    item_id: str
    #: The run that last saw it.
    run_id: str
    #: The run that first found it.
    first_run_id: str
    finding: Finding
    resolution: Resolution
    resolved_by_run: str | None
    resolved_at: datetime | None


#: Kinds judged on every payment a run reads: an open item of one of these, about a payment the run
#: read and did not find again, was explained by later evidence (e.g. the settlement arrived).
JUDGED_PER_PAYMENT: Final = frozenset(
    {
        MismatchKind.MISSING_SETTLEMENT,
        MismatchKind.DELAYED_SETTLEMENT,
        MismatchKind.AMOUNT_MISMATCH,
        MismatchKind.DUPLICATE_TRANSACTION,
    }
)

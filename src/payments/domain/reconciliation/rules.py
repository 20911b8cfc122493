"""The reconciliation rules: one pure function of both sides' records, the range and the clock.

How the gateway's records are matched to ours: a gateway record (a ``PAYMENT`` row of either report, or
a settlement) belongs to the payment of ours that recorded its gateway payment id (``attempt_id``) as
successful, else to the payment with its ``order_id``. ``REFUND`` and ``REFUND_REVERSAL`` rows belong
to the refund of ours whose id or gateway refund id they name. ``SETTLEMENT`` rows of ``/recon`` are
whole payout batches (no order), and disputes, chargebacks and adjustments are not compared here.

"Captured" payments are those in SUCCESS, SETTLED, PARTIALLY_REFUNDED or REFUNDED: money was taken
from the customer, so the gateway must report it and settle it (refunds are netted from the payout,
the payment itself is still settled). Time rules look only at our records inside ``[start, end)``.
A finding never mentions ``now``, so two runs that find the same thing describe it the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TypeVar

from payments.domain.gateway import GatewaySettlement, ReconciliationEntry
from payments.domain.money import Money
from payments.domain.payment.states import PaymentState
from payments.domain.reconciliation import views
from payments.domain.reconciliation.model import (
    Finding,
    MismatchKind,
    OurPayment,
    OurRecords,
    OurRefund,
    OurWebhook,
    TheirRecords,
)
from payments.domain.refund.states import RefundState

#: Payment states in which money was taken from the customer.
CAPTURED: Final = frozenset(
    {PaymentState.SUCCESS, PaymentState.SETTLED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
)
#: Our refund states that mean money left us: the gateway must report them.
REFUND_MOVED_MONEY: Final = frozenset({RefundState.SUCCESS, RefundState.REVERSED})
#: Gateway refund statuses that agree with each of ours. ONHOLD is still in progress at Cashfree
#: (FACTS §5); a REFUND_REVERSAL row makes the gateway's side "REVERSED".
REFUND_AGREES: Final[Mapping[str, frozenset[str]]] = {
    RefundState.INITIATED: frozenset({"PENDING", "ONHOLD"}),
    RefundState.PROCESSING: frozenset({"PENDING", "ONHOLD"}),
    RefundState.SUCCESS: frozenset({"SUCCESS"}),
    RefundState.FAILED: frozenset({"CANCELLED", "FAILED"}),
    RefundState.REVERSED: frozenset({"REVERSED"}),
}
_T = TypeVar("_T")

PAYMENT_EVENT: Final = "PAYMENT"  #: a capture (a credit to our account)
REFUND_EVENT: Final = "REFUND"  #: a refund (a debit)
REFUND_REVERSAL_EVENT: Final = "REFUND_REVERSAL"  #: a refund the bank sent back (a credit again)


@dataclass(frozen=True, kw_only=True)
class _Scope:
    start: datetime
    end: datetime
    now: datetime
    settlement_sla: timedelta
    webhook_grace: timedelta

    def covers(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end


@dataclass(frozen=True, kw_only=True)
class _Sides:
    """Both sides, each list in a canonical order so that nothing depends on input order, and the
    gateway's records grouped by the payment of ours they belong to (see the module docstring)."""

    payments: list[OurPayment]
    refunds: list[OurRefund]
    webhooks: list[OurWebhook]
    settlements: list[GatewaySettlement]
    #: PAYMENT rows of both reports.
    payment_rows: list[ReconciliationEntry]
    #: REFUND and REFUND_REVERSAL rows of both reports.
    refund_rows: list[ReconciliationEntry]
    by_order: Mapping[str, list[OurPayment]]
    by_attempt: Mapping[str, list[OurPayment]]
    #: Our refunds by their id and by their gateway refund id.
    refunds_by_name: Mapping[str, OurRefund]
    rows_by_payment: Mapping[str, list[ReconciliationEntry]]
    settlements_by_payment: Mapping[str, list[GatewaySettlement]]

    def owner(self, order_id: str | None, attempt_id: str | None) -> OurPayment | None:
        """Our payment a gateway record belongs to; a captured one first, then the lowest id."""
        return _owner(self.by_order, self.by_attempt, order_id, attempt_id)

    def rows_of(self, payment: OurPayment) -> list[ReconciliationEntry]:
        return self.rows_by_payment.get(payment.payment_id, [])

    def settlements_of(self, payment: OurPayment) -> list[GatewaySettlement]:
        return self.settlements_by_payment.get(payment.payment_id, [])


def _owner(
    by_order: Mapping[str, list[OurPayment]],
    by_attempt: Mapping[str, list[OurPayment]],
    order_id: str | None,
    attempt_id: str | None,
) -> OurPayment | None:
    found = by_attempt.get(attempt_id or "") or by_order.get(order_id or "") or []
    return min(found, key=lambda p: (p.status.upper() not in CAPTURED, p.payment_id), default=None)


def compare(
    ours: OurRecords,
    theirs: TheirRecords,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    settlement_sla: timedelta,
    webhook_grace: timedelta,
) -> list[Finding]:
    """Every discrepancy between ``ours`` and ``theirs`` for ``[start, end)``, sorted by (kind, key).

    Each rule's docstring says what it finds. A clean range (every captured payment reported, settled
    within the SLA with amounts that add up, refunds agreeing, webhooks processed) gives no finding.
    """
    scope = _Scope(start=start, end=end, now=now, settlement_sla=settlement_sla, webhook_grace=webhook_grace)
    sides = _sides(ours, theirs)
    found: dict[tuple[str, str], Finding] = {}
    for finding in (
        *settlement_timing(sides, scope),
        *orphan_payments(sides, scope),
        *orphan_gateway_payments(sides),
        *duplicate_orders(sides),
        *duplicate_attempts(sides),
        *inconsistent_refunds(sides),
        *unprocessed_webhooks(sides, scope),
        *amount_mismatches(sides),
    ):
        found.setdefault((finding.kind, finding.key), finding)
    return [found[kind_key] for kind_key in sorted(found)]


def _sides(ours: OurRecords, theirs: TheirRecords) -> _Sides:
    payments = _canonical(ours.payments, views.our_payment)
    refunds = _canonical(ours.refunds, views.our_refund)
    rows = _canonical((*theirs.entries, *theirs.settlement_entries), views.entry)
    settlements = _canonical(theirs.settlements, views.gateway_settlement)
    by_order: dict[str, list[OurPayment]] = defaultdict(list)
    by_attempt: dict[str, list[OurPayment]] = defaultdict(list)
    for payment in payments:
        by_order[payment.order_id].append(payment)
        for attempt_id in dict.fromkeys(payment.successful_attempt_ids):
            by_attempt[attempt_id].append(payment)
    payment_rows = [row for row in rows if _event(row) == PAYMENT_EVENT]
    names: dict[str, OurRefund] = {}
    for refund in reversed(refunds):  # reversed: the first in canonical order wins a shared name
        names.update({name: refund for name in (refund.gateway_refund_id, refund.refund_id) if name})
    return _Sides(
        payments=payments,
        refunds=refunds,
        webhooks=_canonical(ours.webhooks, views.our_webhook),
        settlements=settlements,
        payment_rows=payment_rows,
        refund_rows=[row for row in rows if _event(row) in {REFUND_EVENT, REFUND_REVERSAL_EVENT}],
        by_order=by_order,
        by_attempt=by_attempt,
        refunds_by_name=names,
        rows_by_payment=_group(payment_rows, by_order, by_attempt),
        settlements_by_payment=_group(settlements, by_order, by_attempt),
    )


_Record = TypeVar("_Record", ReconciliationEntry, GatewaySettlement)


def _group(
    records: Iterable[_Record],
    by_order: Mapping[str, list[OurPayment]],
    by_attempt: Mapping[str, list[OurPayment]],
) -> dict[str, list[_Record]]:
    grouped: dict[str, list[_Record]] = defaultdict(list)
    for record in records:
        owner = _owner(by_order, by_attempt, record.order_id, record.attempt_id)
        if owner is not None:
            grouped[owner.payment_id].append(record)
    return grouped


def _canonical(records: Iterable[_T], view: Callable[[_T], Mapping[str, Any]]) -> list[_T]:
    return sorted(records, key=lambda record: views.dumps(view(record)))


def _event(row: ReconciliationEntry) -> str:
    return row.event_type.strip().upper()


def _succeeded(row: ReconciliationEntry) -> bool:
    """A PAYMENT row is a capture unless it says otherwise (Cashfree lists captures as SUCCESS)."""
    return row.status is None or row.status.strip().upper() == "SUCCESS"


def _captured(payment: OurPayment) -> bool:
    return payment.status.upper() in CAPTURED


def settlement_timing(sides: _Sides, scope: _Scope) -> Iterator[Finding]:
    """MISSING_SETTLEMENT and DELAYED_SETTLEMENT, for captured payments that succeeded in the range.

    Due by ``succeeded_at + settlement_sla`` (settling exactly then is on time). Evidence of settlement:
    a settlement of ours, a gateway settlement of the payment, or a PAYMENT row naming a settlement.
    None and ``now`` past the due time: missing. Settled (the earliest known payout time) after the
    due time: delayed. A payment the gateway knows nothing about is an orphan instead, not both.
    """
    for payment in sides.payments:
        # Every payment read is judged, those read for a payout in the range too: a settlement that
        # came late is reported when it comes, and an open "missing" item is then explained.
        if payment.succeeded_at is None or not _captured(payment):
            continue
        if _unknown_to_gateway(sides, payment):
            continue
        due = payment.succeeded_at + scope.settlement_sla
        gateway = sides.settlements_of(payment)
        settled_rows = [row for row in sides.rows_of(payment) if row.settlement_id is not None]
        ours = {"payment": views.our_payment(payment)}
        timing = {"succeeded_at": views.iso(payment.succeeded_at), "settle_by": views.iso(due)}
        if not (payment.settlements or gateway or settled_rows):
            if scope.now > due:
                yield _finding(
                    MismatchKind.MISSING_SETTLEMENT,
                    payment.payment_id,
                    payment_id=payment.payment_id,
                    ours=ours,
                    theirs=None,
                    difference=timing,
                )
            continue
        settled_at = _earliest_payout(payment, gateway)
        if settled_at is not None and settled_at > due:
            late = {"settled_at": views.iso(settled_at), "late_by_seconds": _seconds(settled_at - due)}
            theirs = {"settlements": [views.gateway_settlement(s) for s in gateway]}
            yield _finding(
                MismatchKind.DELAYED_SETTLEMENT,
                payment.payment_id,
                payment_id=payment.payment_id,
                ours=ours,
                theirs=theirs,
                difference=timing | late,
            )


def _earliest_payout(payment: OurPayment, gateway: Sequence[GatewaySettlement]) -> datetime | None:
    """When the money was first paid out, by our record or the gateway's; None when neither says."""
    times = [s.settled_at for s in payment.settlements if s.settled_at is not None]
    times += [s.settled_at for s in gateway if s.settled_at is not None]
    return min(times, default=None)


def orphan_payments(sides: _Sides, scope: _Scope) -> Iterator[Finding]:
    """ORPHAN_PAYMENT: a captured payment of ours that succeeded in the range, about which the gateway
    reports nothing at all (no PAYMENT row and no settlement, by gateway payment id or order)."""
    for payment in sides.payments:
        in_scope = payment.in_range and scope.covers(payment.succeeded_at)
        if _captured(payment) and in_scope and _unknown_to_gateway(sides, payment):
            difference = {
                "order_id": payment.order_id,
                "successful_attempt_ids": sorted(set(payment.successful_attempt_ids)),
                "succeeded_at": views.iso(payment.succeeded_at),
            }
            ours = {"payment": views.our_payment(payment)}
            yield _finding(
                MismatchKind.ORPHAN_PAYMENT,
                payment.payment_id,
                payment_id=payment.payment_id,
                ours=ours,
                theirs=None,
                difference=difference,
            )


def _unknown_to_gateway(sides: _Sides, payment: OurPayment) -> bool:
    return not (sides.rows_of(payment) or sides.settlements_of(payment))


def orphan_gateway_payments(sides: _Sides) -> Iterator[Finding]:
    """ORPHAN_GATEWAY_PAYMENT: gateway PAYMENT rows and settlements for an order we do not know
    (``unknown_order``), or a gateway capture or settlement of an order whose payment we never recorded
    as captured (``not_recorded_as_paid``: the customer paid and we did not credit). One finding per
    order; a row with neither order nor gateway payment id cannot be attributed and is left out."""
    groups: dict[str, list[ReconciliationEntry | GatewaySettlement]] = defaultdict(list)
    candidates: list[ReconciliationEntry | GatewaySettlement] = [*sides.payment_rows, *sides.settlements]
    for record in candidates:
        owner = sides.owner(record.order_id, record.attempt_id)
        captured_there = not isinstance(record, ReconciliationEntry) or _succeeded(record)
        if owner is None or (captured_there and not _captured(owner)):
            name = record.order_id or (f"attempt:{record.attempt_id}" if record.attempt_id else None)
            if name is not None:
                groups[name].append(record)
    for name in sorted(groups):
        records = groups[name]
        owner = sides.owner(records[0].order_id, records[0].attempt_id)
        theirs = _gateway_view(records)
        difference = {
            "order_id": records[0].order_id,
            "attempt_ids": sorted({r.attempt_id for r in records if r.attempt_id is not None}),
            "reason": "unknown_order" if owner is None else "not_recorded_as_paid",
        }
        ours = None if owner is None else {"payment": views.our_payment(owner)}
        payment_id = None if owner is None else owner.payment_id
        yield _finding(
            MismatchKind.ORPHAN_GATEWAY_PAYMENT,
            name,
            payment_id=payment_id,
            ours=ours,
            theirs=theirs,
            difference=difference,
        )


def duplicate_orders(sides: _Sides) -> Iterator[Finding]:
    """DUPLICATE_TRANSACTION ``order:<order_id>``: one order recorded by more than one payment of ours,
    or more than one successful gateway payment id for one order (ours and the gateway's together:
    the customer was charged twice)."""
    for order_id in sorted(sides.by_order):
        payments = sides.by_order[order_id]
        rows = [row for p in payments for row in sides.rows_of(p) if _succeeded(row)]
        settlements = [s for p in payments for s in sides.settlements_of(p)]
        attempts = {a for p in payments for a in p.successful_attempt_ids}
        attempts |= {row.attempt_id for row in rows if row.attempt_id is not None}
        attempts |= {s.attempt_id for s in settlements if s.attempt_id is not None}
        if len(payments) < 2 and len(attempts) < 2:
            continue
        owner = sides.owner(order_id, None)
        difference = {
            "order_id": order_id,
            "payment_ids": [p.payment_id for p in payments],
            "successful_attempt_ids": sorted(attempts),
        }
        ours = {"payments": [views.our_payment(p) for p in payments]}
        theirs = _gateway_view([*rows, *settlements]) if rows or settlements else None
        key = f"order:{order_id}"
        payment_id = owner.payment_id if owner else None
        yield _finding(
            MismatchKind.DUPLICATE_TRANSACTION,
            key,
            payment_id=payment_id,
            ours=ours,
            theirs=theirs,
            difference=difference,
        )


def duplicate_attempts(sides: _Sides) -> Iterator[Finding]:
    """DUPLICATE_TRANSACTION ``attempt:<id>``: one gateway payment id recorded as successful on payments
    of different orders, or twice on one payment (the same order on two payments is ``order:``)."""
    for attempt_id in sorted(sides.by_attempt):
        payments = sides.by_attempt[attempt_id]
        orders = sorted({p.order_id for p in payments})
        repeated = any(p.successful_attempt_ids.count(attempt_id) > 1 for p in payments)
        if len(orders) < 2 and not repeated:
            continue
        difference = {
            "attempt_id": attempt_id,
            "order_ids": orders,
            "payment_ids": [p.payment_id for p in payments],
        }
        ours = {"payments": [views.our_payment(p) for p in payments]}
        key = f"attempt:{attempt_id}"
        yield _finding(
            MismatchKind.DUPLICATE_TRANSACTION,
            key,
            payment_id=payments[0].payment_id,
            ours=ours,
            theirs=None,
            difference=difference,
        )


def inconsistent_refunds(sides: _Sides) -> Iterator[Finding]:
    """INCONSISTENT_REFUND: for each refund of ours, its gateway REFUND/REFUND_REVERSAL rows disagree
    on status (see ``REFUND_AGREES``; the latest REFUND row counts, a reversal makes it REVERSED) or
    on amount (compared unsigned: the report may write debits negative); or a refund of ours that
    moved money has no row (``missing: theirs``); or a gateway refund we have no record of
    (``missing: ours``, keyed ``gateway:<refund id>``)."""
    matched: dict[str, list[ReconciliationEntry]] = defaultdict(list)
    strangers: dict[str, list[ReconciliationEntry]] = defaultdict(list)
    for row in sides.refund_rows:
        refund = _refund_of(sides, row)
        if refund is not None:
            matched[refund.refund_id].append(row)
        else:
            strangers[f"gateway:{row.refund_id or row.event_id}"].append(row)
    for refund in sides.refunds:
        difference = _refund_difference(refund, matched.get(refund.refund_id, []))
        if difference:
            ours = {"refund": views.our_refund(refund)}
            rows = matched.get(refund.refund_id, [])
            theirs = {"refunds": [views.entry(row) for row in rows]} if rows else None
            yield _finding(
                MismatchKind.INCONSISTENT_REFUND,
                refund.refund_id,
                payment_id=refund.payment_id,
                ours=ours,
                theirs=theirs,
                difference=difference,
            )
    for name in sorted(strangers):
        rows = strangers[name]
        owner = sides.owner(rows[0].order_id, rows[0].attempt_id)
        theirs = {"refunds": [views.entry(row) for row in rows]}
        difference = {"missing": "ours", "status": _their_refund_status(rows), "amount": _their_amount(rows)}
        payment_id = owner.payment_id if owner else None
        yield _finding(
            MismatchKind.INCONSISTENT_REFUND,
            name,
            payment_id=payment_id,
            ours=None,
            theirs=theirs,
            difference=difference,
        )


def _refund_of(sides: _Sides, row: ReconciliationEntry) -> OurRefund | None:
    """Cashfree's ``refund_id`` is ours; its ``event_id`` of a refund row is its own refund id."""
    return sides.refunds_by_name.get(row.refund_id or "") or sides.refunds_by_name.get(row.event_id)


def _refund_difference(refund: OurRefund, rows: Sequence[ReconciliationEntry]) -> dict[str, Any]:
    if not rows:
        return {"missing": "theirs"} if refund.status.upper() in REFUND_MOVED_MONEY else {}
    difference: dict[str, Any] = {}
    status = _their_refund_status(rows)
    agrees = REFUND_AGREES.get(refund.status.upper(), frozenset({refund.status.upper()}))
    if status is not None and status not in agrees:
        difference["status"] = {"ours": refund.status, "theirs": status}
    theirs = _latest_refund_row(rows).amount
    if theirs.currency != refund.amount.currency or abs(theirs.amount) != refund.amount.amount:
        unsigned = Money(abs(theirs.amount), theirs.currency)
        difference["amount"] = _money_difference(refund.amount, unsigned)
    return difference


def _latest_refund_row(rows: Sequence[ReconciliationEntry]) -> ReconciliationEntry:
    refunds = [row for row in rows if _event(row) == REFUND_EVENT] or list(rows)
    return max(refunds, key=lambda row: (views.iso(row.occurred_at) or "", row.event_id))


def _their_refund_status(rows: Sequence[ReconciliationEntry]) -> str | None:
    if any(_event(row) == REFUND_REVERSAL_EVENT for row in rows):
        return "REVERSED"
    status = _latest_refund_row(rows).status
    return status.strip().upper() if status else None


def _their_amount(rows: Sequence[ReconciliationEntry]) -> str:
    return views.decimal(abs(_latest_refund_row(rows).amount.amount))


def unprocessed_webhooks(sides: _Sides, scope: _Scope) -> Iterator[Finding]:
    """UNPROCESSED_WEBHOOK: a webhook received in the range, not SUCCESS, and received more than
    ``webhook_grace`` before ``now`` (exactly the grace is still within it)."""
    for webhook in sides.webhooks:
        late = scope.now - webhook.received_at > scope.webhook_grace
        if webhook.status.upper() == "SUCCESS" or not scope.covers(webhook.received_at) or not late:
            continue
        owner = sides.owner(webhook.order_id, None)
        difference = {
            "status": webhook.status,
            "received_at": views.iso(webhook.received_at),
            "process_by": views.iso(webhook.received_at + scope.webhook_grace),
        }
        ours = {"webhook": views.our_webhook(webhook)}
        payment_id = owner.payment_id if owner else None
        key = str(webhook.webhook_id)
        yield _finding(
            MismatchKind.UNPROCESSED_WEBHOOK,
            key,
            payment_id=payment_id,
            ours=ours,
            theirs=None,
            difference=difference,
        )


def amount_mismatches(sides: _Sides) -> Iterator[Finding]:
    """AMOUNT_MISMATCH, one finding per check and gateway record, keyed ``<payment>:<check>:<record>``:
    ``order`` a settlement's order amount is not our amount; ``payment`` a captured PAYMENT row's
    amount is not ours; ``settlement`` a settlement's amount is not order amount - service charge -
    service tax; ``recorded_settlement`` the settlement we recorded has another amount than the
    gateway's settlement of the same id. Records of orders we do not know are orphans instead."""
    for payment in sides.payments:
        for settlement in sides.settlements_of(payment):
            yield from _settlement_amounts(payment, settlement)
        for row in sides.rows_of(payment):
            if _succeeded(row) and row.amount != payment.amount:
                name = f"payment:{row.attempt_id or row.event_id}"
                yield _amount_finding(
                    payment, name, {"payment": views.entry(row)}, payment.amount, row.amount
                )


def _settlement_amounts(payment: OurPayment, settlement: GatewaySettlement) -> Iterator[Finding]:
    theirs = {"settlement": views.gateway_settlement(settlement)}
    sid = settlement.settlement_id
    if settlement.order_amount != payment.amount:
        yield _amount_finding(payment, f"order:{sid}", theirs, payment.amount, settlement.order_amount)
    parts = (settlement.order_amount, settlement.service_charge, settlement.service_tax)
    # Fees charged in another currency than the order cannot be netted here; Cashfree charges INR.
    if len({part.currency for part in parts}) == 1:
        expected = settlement.order_amount - settlement.service_charge - settlement.service_tax
        if expected != settlement.settlement_amount:
            yield _amount_finding(
                payment, f"settlement:{sid}", theirs, expected, settlement.settlement_amount
            )
    for recorded in payment.settlements:
        if recorded.settlement_id == sid and recorded.amount != settlement.settlement_amount:
            name = f"recorded_settlement:{sid}"
            yield _amount_finding(payment, name, theirs, recorded.amount, settlement.settlement_amount)


def _amount_finding(
    payment: OurPayment, check: str, theirs: Mapping[str, Any], expected: Money, actual: Money
) -> Finding:
    difference = {"check": check.split(":", 1)[0], **_money_difference(expected, actual)}
    ours = {"payment": views.our_payment(payment)}
    key = f"{payment.payment_id}:{check}"
    return _finding(
        MismatchKind.AMOUNT_MISMATCH,
        key,
        payment_id=payment.payment_id,
        ours=ours,
        theirs=theirs,
        difference=difference,
    )


def _money_difference(expected: Money, actual: Money) -> dict[str, Any]:
    same = expected.currency == actual.currency
    return {
        "expected": views.amount(expected),
        "expected_currency": expected.currency,
        "actual": views.amount(actual),
        "actual_currency": actual.currency,
        "delta": views.amount(actual - expected) if same else None,
    }


def _gateway_view(records: Sequence[ReconciliationEntry | GatewaySettlement]) -> dict[str, Any]:
    return {
        "payments": [views.entry(r) for r in records if isinstance(r, ReconciliationEntry)],
        "settlements": [views.gateway_settlement(r) for r in records if isinstance(r, GatewaySettlement)],
    }


def _seconds(span: timedelta) -> str:
    """A duration in exact seconds, as a string like the amounts."""
    whole = Decimal(span.days * 86_400 + span.seconds) + Decimal(span.microseconds).scaleb(-6)
    return views.decimal(whole.normalize())


def _finding(
    kind: MismatchKind,
    name: str,
    *,
    payment_id: str | None,
    ours: Mapping[str, Any] | None,
    theirs: Mapping[str, Any] | None,
    difference: Mapping[str, Any],
) -> Finding:
    """A finding keyed ``<kind>:<name>``: the name is what the discrepancy is about, never a time."""
    return Finding(
        kind=kind,
        key=f"{kind.value}:{name}",
        payment_id=payment_id,
        ours=ours,
        theirs=theirs,
        difference=difference,
    )

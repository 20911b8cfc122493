"""Each reconciliation rule finds its case, with the right records and difference, and nothing else."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from payments.domain.reconciliation.model import Finding, MismatchKind, OurRecords, TheirRecords
from tests.unit.reconciliation.builders import (
    END,
    GRACE,
    NOW,
    SLA,
    START,
    clean_ours,
    clean_theirs,
    inr,
    payment,
    payment_row,
    refund,
    refund_row,
    run_compare,
    settlement,
    webhook,
)


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, [f.key for f in findings]
    return findings[0]


def without_order(theirs: TheirRecords, order_id: str) -> TheirRecords:
    return TheirRecords(
        settlements=tuple(s for s in theirs.settlements if s.order_id != order_id),
        entries=tuple(e for e in theirs.entries if e.order_id != order_id),
        settlement_entries=tuple(e for e in theirs.settlement_entries if e.order_id != order_id),
    )


def without_settlement(theirs: TheirRecords, order_id: str) -> TheirRecords:
    return TheirRecords(
        settlements=tuple(s for s in theirs.settlements if s.order_id != order_id),
        entries=theirs.entries,
        settlement_entries=tuple(e for e in theirs.settlement_entries if e.order_id != order_id),
    )


def test_clean_data_gives_no_findings() -> None:
    assert run_compare(clean_ours(), clean_theirs()) == []


def test_clean_data_before_any_sla_is_due_gives_no_findings() -> None:
    ours = clean_ours()
    theirs = TheirRecords(settlements=(), entries=clean_theirs().entries, settlement_entries=())
    unsettled = replace(ours, payments=(payment(1), payment(2), payment(3, status="FAILED")))
    assert run_compare(unsettled, theirs, now=END) == []


def test_a_payment_past_the_sla_without_settlement_is_missing_one() -> None:
    found = only(run_compare(clean_ours(), without_settlement(clean_theirs(), "ord_1")))
    assert found.kind is MismatchKind.MISSING_SETTLEMENT
    assert found.key == "missing_settlement:pay_1"
    assert found.payment_id == "pay_1"
    assert found.ours is not None
    assert found.ours["payment"]["payment_id"] == "pay_1"
    assert found.theirs is None
    assert found.difference == {
        "succeeded_at": "2025-01-01T01:00:00+00:00",
        "settle_by": "2025-01-03T01:00:00+00:00",
    }


def test_missing_settlement_waits_until_the_sla_has_passed() -> None:
    theirs = without_settlement(clean_theirs(), "ord_1")
    due = START + timedelta(hours=1) + SLA
    assert run_compare(clean_ours(), theirs, now=due) == []
    assert only(run_compare(clean_ours(), theirs, now=due + timedelta(microseconds=1))).kind is (
        MismatchKind.MISSING_SETTLEMENT
    )


def test_a_settlement_named_only_by_a_payment_row_counts_as_settled() -> None:
    theirs = clean_theirs()
    theirs = TheirRecords(
        settlements=tuple(s for s in theirs.settlements if s.order_id != "ord_1"),
        entries=theirs.entries,
        settlement_entries=theirs.settlement_entries,
    )
    assert run_compare(clean_ours(), theirs) == []


def test_a_settlement_later_than_the_sla_is_delayed() -> None:
    theirs = clean_theirs()
    late = settlement(1, after=SLA + timedelta(hours=5))
    theirs = replace(theirs, settlements=(late, settlement(2)))
    found = only(run_compare(clean_ours(), theirs))
    assert found.kind is MismatchKind.DELAYED_SETTLEMENT
    assert found.key == "delayed_settlement:pay_1"
    assert found.difference == {
        "succeeded_at": "2025-01-01T01:00:00+00:00",
        "settle_by": "2025-01-03T01:00:00+00:00",
        "settled_at": "2025-01-03T06:00:00+00:00",
        "late_by_seconds": "18000",
    }
    assert found.theirs is not None
    assert [s["settlement_id"] for s in found.theirs["settlements"]] == ["set_1"]


def test_a_settlement_exactly_at_the_sla_is_on_time() -> None:
    theirs = replace(clean_theirs(), settlements=(settlement(1, after=SLA), settlement(2)))
    assert run_compare(clean_ours(), theirs) == []
    theirs = replace(
        clean_theirs(), settlements=(settlement(1, after=SLA + timedelta(microseconds=1)), settlement(2))
    )
    assert only(run_compare(clean_ours(), theirs)).difference["late_by_seconds"] == "0.000001"


def test_one_order_recorded_twice_is_a_duplicate() -> None:
    ours = clean_ours()
    twin = payment(9, order_id="ord_1", status="FAILED")
    found = only(run_compare(replace(ours, payments=(*ours.payments, twin)), clean_theirs()))
    assert found.kind is MismatchKind.DUPLICATE_TRANSACTION
    assert found.key == "duplicate_transaction:order:ord_1"
    assert found.payment_id == "pay_1"
    assert found.difference == {
        "order_id": "ord_1",
        "payment_ids": ["pay_1", "pay_9"],
        "successful_attempt_ids": ["cf_1"],
    }


def test_two_successful_gateway_payments_for_one_order_is_a_double_charge() -> None:
    theirs = clean_theirs()
    second = payment_row(1, event_id="cf_1b", attempt_id="cf_1b")
    found = only(run_compare(clean_ours(), replace(theirs, entries=(*theirs.entries, second))))
    assert found.key == "duplicate_transaction:order:ord_1"
    assert found.difference["successful_attempt_ids"] == ["cf_1", "cf_1b"]
    assert found.theirs is not None
    assert {row["attempt_id"] for row in found.theirs["payments"]} == {"cf_1", "cf_1b"}


def test_a_failed_gateway_attempt_before_the_success_is_not_a_double_charge() -> None:
    theirs = clean_theirs()
    failed = payment_row(1, event_id="cf_1a", attempt_id="cf_1a", status="FAILED")
    assert run_compare(clean_ours(), replace(theirs, entries=(*theirs.entries, failed))) == []


def test_one_gateway_payment_id_on_two_orders_is_a_duplicate() -> None:
    ours = clean_ours()
    stolen = replace(ours.payments[1], successful_attempt_ids=("cf_2", "cf_1"))
    findings = run_compare(
        replace(ours, payments=(ours.payments[0], stolen, ours.payments[2])), clean_theirs()
    )
    keys = [f.key for f in findings]
    assert "duplicate_transaction:attempt:cf_1" in keys
    attempt = next(f for f in findings if f.key == "duplicate_transaction:attempt:cf_1")
    assert attempt.difference == {
        "attempt_id": "cf_1",
        "order_ids": ["ord_1", "ord_2"],
        "payment_ids": ["pay_1", "pay_2"],
    }


def test_refund_status_disagreement_is_inconsistent() -> None:
    theirs = clean_theirs()
    entries = (*tuple(e for e in theirs.entries if e.event_type != "REFUND"), refund_row(2, status="PENDING"))
    found = only(run_compare(clean_ours(), replace(theirs, entries=entries)))
    assert found.kind is MismatchKind.INCONSISTENT_REFUND
    assert found.key == "inconsistent_refund:ref_2"
    assert found.payment_id == "pay_2"
    assert found.difference == {"status": {"ours": "SUCCESS", "theirs": "PENDING"}}


def test_refund_amount_disagreement_is_inconsistent_and_debits_compare_unsigned() -> None:
    theirs = clean_theirs()
    entries = tuple(e for e in theirs.entries if e.event_type != "REFUND")
    negative = refund_row(2, amount="10.00", event_id="cfr_2")
    negative = replace(negative, amount=inr("-10.00"))
    assert run_compare(clean_ours(), replace(theirs, entries=(*entries, negative))) == []
    found = only(
        run_compare(clean_ours(), replace(theirs, entries=(*entries, refund_row(2, amount="12.00"))))
    )
    assert found.difference == {
        "amount": {
            "expected": "10.00",
            "expected_currency": "INR",
            "actual": "12.00",
            "actual_currency": "INR",
            "delta": "2.00",
        }
    }


def test_a_successful_refund_the_gateway_lacks_is_inconsistent() -> None:
    theirs = clean_theirs()
    entries = tuple(e for e in theirs.entries if e.event_type != "REFUND")
    found = only(run_compare(clean_ours(), replace(theirs, entries=entries)))
    assert found.key == "inconsistent_refund:ref_2"
    assert found.theirs is None
    assert found.difference == {"missing": "theirs"}


def test_a_pending_refund_the_gateway_does_not_list_yet_is_fine() -> None:
    ours = replace(clean_ours(), refunds=(refund(2, status="PROCESSING"),))
    theirs = clean_theirs()
    entries = tuple(e for e in theirs.entries if e.event_type != "REFUND")
    assert run_compare(ours, replace(theirs, entries=entries)) == []
    assert run_compare(ours, replace(theirs, entries=(*entries, refund_row(2, status="ONHOLD")))) == []


def test_a_gateway_refund_we_never_recorded_is_inconsistent() -> None:
    theirs = clean_theirs()
    stranger = refund_row(1, event_id="cfr_9", refund_id="ref_9")
    found = only(run_compare(clean_ours(), replace(theirs, entries=(*theirs.entries, stranger))))
    assert found.key == "inconsistent_refund:gateway:ref_9"
    assert found.ours is None
    assert found.payment_id == "pay_1"
    assert found.difference == {"missing": "ours", "status": "SUCCESS", "amount": "10.00"}


def test_a_refund_reversal_makes_the_gateway_side_reversed() -> None:
    theirs = clean_theirs()
    reversal = refund_row(2, event_id="rr_2", event_type="REFUND_REVERSAL", occurred_at=NOW)
    with_reversal = replace(theirs, entries=(*theirs.entries, reversal))
    found = only(run_compare(clean_ours(), with_reversal))
    assert found.difference == {"status": {"ours": "SUCCESS", "theirs": "REVERSED"}}
    reversed_ours = replace(clean_ours(), refunds=(refund(2, status="REVERSED"),))
    assert run_compare(reversed_ours, with_reversal) == []


def test_a_gateway_payment_for_an_unknown_order_is_an_orphan() -> None:
    theirs = clean_theirs()
    stranger = payment_row(7)
    found = only(
        run_compare(
            clean_ours(),
            replace(
                theirs, entries=(*theirs.entries, stranger), settlements=(*theirs.settlements, settlement(7))
            ),
        )
    )
    assert found.kind is MismatchKind.ORPHAN_GATEWAY_PAYMENT
    assert found.key == "orphan_gateway_payment:ord_7"
    assert found.payment_id is None
    assert found.ours is None
    assert found.difference == {"order_id": "ord_7", "attempt_ids": ["cf_7"], "reason": "unknown_order"}
    assert found.theirs is not None
    assert [r["event_id"] for r in found.theirs["payments"]] == ["cf_7"]
    assert [s["settlement_id"] for s in found.theirs["settlements"]] == ["set_7"]


def test_a_gateway_capture_of_an_order_we_hold_unpaid_is_an_orphan() -> None:
    theirs = clean_theirs()
    captured = payment_row(3)
    found = only(run_compare(clean_ours(), replace(theirs, entries=(*theirs.entries, captured))))
    assert found.key == "orphan_gateway_payment:ord_3"
    assert found.payment_id == "pay_3"
    assert found.difference["reason"] == "not_recorded_as_paid"


def test_a_payment_the_gateway_knows_nothing_about_is_an_orphan_not_a_missing_settlement() -> None:
    found = only(run_compare(clean_ours(), without_order(clean_theirs(), "ord_1")))
    assert found.kind is MismatchKind.ORPHAN_PAYMENT
    assert found.key == "orphan_payment:pay_1"
    assert found.theirs is None
    assert found.difference == {
        "order_id": "ord_1",
        "successful_attempt_ids": ["cf_1"],
        "succeeded_at": "2025-01-01T01:00:00+00:00",
    }


def test_payments_outside_the_range_are_not_orphans() -> None:
    ours = clean_ours()
    early = payment(8, succeeded_at=START - timedelta(microseconds=1))
    at_end = payment(9, succeeded_at=END)
    assert run_compare(replace(ours, payments=(*ours.payments, early, at_end)), clean_theirs()) == []


def test_a_webhook_not_processed_after_the_grace_is_found() -> None:
    ours = clean_ours()
    stuck = webhook(5, status="FAILED", order_id="ord_1")
    found = only(run_compare(replace(ours, webhooks=(*ours.webhooks, stuck)), clean_theirs()))
    assert found.kind is MismatchKind.UNPROCESSED_WEBHOOK
    assert found.key == "unprocessed_webhook:5"
    assert found.payment_id == "pay_1"
    assert found.difference == {
        "status": "FAILED",
        "received_at": "2025-01-01T05:00:00+00:00",
        "process_by": "2025-01-01T06:00:00+00:00",
    }


def test_a_webhook_still_within_its_grace_is_not_found() -> None:
    ours = clean_ours()
    fresh = webhook(5, status="RECEIVED")
    records = replace(ours, webhooks=(*ours.webhooks, fresh))
    at_grace = fresh.received_at + GRACE
    assert run_compare(records, clean_theirs(), now=at_grace) == []
    assert len(run_compare(records, clean_theirs(), now=at_grace + timedelta(seconds=1))) == 1


@pytest.mark.parametrize(
    ("spoil", "key", "expected", "actual"),
    [
        ("order", "amount_mismatch:pay_1:order:set_1", "100.00", "90.00"),
        ("settlement", "amount_mismatch:pay_1:settlement:set_1", "97.64", "97.00"),
        ("payment", "amount_mismatch:pay_1:payment:cf_1", "100.00", "101.00"),
    ],
)
def test_amounts_that_do_not_add_up_are_mismatches(spoil: str, key: str, expected: str, actual: str) -> None:
    theirs = clean_theirs()
    if spoil == "order":
        theirs = replace(
            theirs,
            settlements=(
                settlement(1, order_amount=inr("90.00"), settlement_amount=inr("87.64")),
                settlement(2),
            ),
        )
    elif spoil == "settlement":
        theirs = replace(theirs, settlements=(settlement(1, settlement_amount=inr("97.00")), settlement(2)))
    else:
        rows = tuple(e for e in theirs.entries if e.event_id != "cf_1")
        theirs = replace(theirs, entries=(*rows, payment_row(1, amount="101.00")))
    found = only(run_compare(clean_ours(), theirs))
    assert found.kind is MismatchKind.AMOUNT_MISMATCH
    assert found.key == key
    assert found.payment_id == "pay_1"
    assert found.difference["check"] == spoil
    assert (found.difference["expected"], found.difference["actual"]) == (expected, actual)


def test_a_recorded_settlement_amount_that_differs_from_the_gateway_is_a_mismatch() -> None:
    ours = clean_ours()
    pay_2 = ours.payments[1]
    wrong = replace(pay_2.settlements[0], amount=inr("90.00"))
    spoiled = replace(
        ours, payments=(ours.payments[0], replace(pay_2, settlements=(wrong,)), ours.payments[2])
    )
    found = only(run_compare(spoiled, clean_theirs()))
    assert found.key == "amount_mismatch:pay_2:recorded_settlement:set_2"
    assert found.difference["delta"] == "7.64"


def shuffled(ours: OurRecords, theirs: TheirRecords, seed: int) -> tuple[OurRecords, TheirRecords]:
    rng = random.Random(seed)

    def mix(items: tuple[Any, ...]) -> tuple[Any, ...]:
        listed = list(items)
        rng.shuffle(listed)
        return tuple(listed)

    return (
        OurRecords(payments=mix(ours.payments), refunds=mix(ours.refunds), webhooks=mix(ours.webhooks)),
        TheirRecords(
            settlements=mix(theirs.settlements),
            entries=mix(theirs.entries),
            settlement_entries=mix(theirs.settlement_entries),
        ),
    )


def messy() -> tuple[OurRecords, TheirRecords]:
    """One of everything wrong at once."""
    ours = clean_ours()
    theirs = clean_theirs()
    ours = replace(
        ours,
        payments=(*ours.payments, payment(4), payment(5), payment(6, order_id="ord_1", status="FAILED")),
        webhooks=(*ours.webhooks, webhook(7, status="FAILED")),
        refunds=(*ours.refunds, refund(1, status="SUCCESS")),
    )
    theirs = replace(
        theirs,
        entries=(
            *theirs.entries,
            payment_row(5, amount="99.00"),
            payment_row(8),
            payment_row(1, event_id="x"),
        ),
        settlements=(*theirs.settlements, settlement(5, after=SLA * 2)),
    )
    return ours, theirs


def test_findings_do_not_depend_on_input_order() -> None:
    ours, theirs = messy()
    expected = run_compare(ours, theirs)
    assert len({f.kind for f in expected}) >= 6
    assert [(f.kind, f.key) for f in expected] == sorted((f.kind, f.key) for f in expected)
    for seed in range(5):
        assert run_compare(*shuffled(ours, theirs, seed)) == expected

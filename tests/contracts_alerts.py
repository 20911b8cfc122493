"""The alert and fraud-signal repository contracts, run against the in-memory fakes and PostgreSQL.

Each contract takes a unit-of-work factory. The PostgreSQL database is shared by the whole run, so
every contract works under kinds and ids of its own.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from payments.domain.alerts.model import Alert, Severity
from payments.domain.alerts.service import raise_alert
from payments.domain.fraud.signals import FraudSignal, Verdict

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
COOLDOWN = timedelta(minutes=15)


def an_alert(kind: str, *, at: datetime = NOW, subject: str = "method:upi") -> Alert:
    return Alert(
        kind=kind,
        subject=subject,
        severity=Severity.CRITICAL,
        title="Payment failures at 80% over 5 min",
        details={"failed": 8, "succeeded": 2, "rate": Decimal("0.8")},
        since=at - timedelta(minutes=5),
        raised_at=at,
        source="alerts",
    )


def a_kind() -> str:
    return f"test_{uuid.uuid4().hex[:12]}"


async def an_alert_is_stored_and_read_back_whole(uow_factory) -> None:
    alert = an_alert(a_kind())
    async with uow_factory() as uow:
        assert await uow.alerts.add_unless_recent(alert, cooldown=COOLDOWN)
    async with uow_factory() as uow:
        newest = await uow.alerts.recent(limit=50)

    [stored] = [s for s in newest if s.alert.kind == alert.kind]
    # Details travel as JSON: a Decimal comes back as its exact text.
    assert stored.alert == replace(alert, details={"failed": 8, "succeeded": 2, "rate": "0.8"})


async def the_same_key_is_raised_once_per_cooldown(uow_factory) -> None:
    kind = a_kind()
    results = []
    for offset in (
        timedelta(0),
        timedelta(minutes=14, seconds=59),
        COOLDOWN,
        COOLDOWN + timedelta(seconds=1),
    ):
        async with uow_factory() as uow:
            results.append(
                await uow.alerts.add_unless_recent(an_alert(kind, at=NOW + offset), cooldown=COOLDOWN)
            )

    # Within the cooldown nothing; at exactly its end the previous alert is no longer "within" it.
    assert results == [True, False, True, False]


async def other_subjects_have_their_own_cooldown(uow_factory) -> None:
    kind = a_kind()
    async with uow_factory() as uow:
        first = await uow.alerts.add_unless_recent(an_alert(kind, subject="method:upi"), cooldown=COOLDOWN)
        second = await uow.alerts.add_unless_recent(an_alert(kind, subject="method:card"), cooldown=COOLDOWN)

    assert (first, second) == (True, True)


async def raising_publishes_the_alert_with_the_same_transaction(uow_factory, published_alerts) -> None:
    """``published_alerts(kind)`` reads back the ``email.admin.alert`` payloads of one kind."""
    alert = an_alert(a_kind())
    async with uow_factory() as uow:
        assert await raise_alert(uow, alert, cooldown=COOLDOWN)
    async with uow_factory() as uow:
        later = an_alert(alert.kind, at=NOW + timedelta(minutes=1))
        assert not await raise_alert(uow, later, cooldown=COOLDOWN)

    [payload] = await published_alerts(alert.kind)
    assert payload == {**alert.message(), "details": {"failed": 8, "succeeded": 2, "rate": "0.8"}}


async def concurrent_raisers_store_one_alert(uow_factory) -> None:
    kind = a_kind()

    async def raise_at(seconds: int) -> bool:
        async with uow_factory() as uow:
            return await uow.alerts.add_unless_recent(
                an_alert(kind, at=NOW + timedelta(seconds=seconds)), cooldown=COOLDOWN
            )

    results = await asyncio.gather(*(raise_at(seconds) for seconds in range(8)))

    assert sum(results) == 1


async def recent_pages_forward_from_a_sequence(uow_factory) -> None:
    kind = a_kind()
    async with uow_factory() as uow:
        for minutes in range(3):
            alert = an_alert(kind, at=NOW + timedelta(minutes=minutes), subject=f"queue:q{minutes}")
            await uow.alerts.add_unless_recent(alert, cooldown=COOLDOWN)
    async with uow_factory() as uow:
        mine = [s for s in await uow.alerts.recent(limit=1000) if s.alert.kind == kind]
        after_first = await uow.alerts.recent(limit=1000, after_sequence=mine[-1].sequence)

    assert [s.alert.subject for s in mine] == ["queue:q2", "queue:q1", "queue:q0"]
    assert [s.alert.subject for s in after_first if s.alert.kind == kind] == ["queue:q1", "queue:q2"]


def a_signal(payment_id: str | None, *, rule: str = "ip_per_minute", at: datetime = NOW) -> FraudSignal:
    return FraudSignal(
        rule=rule,
        verdict=Verdict.BLOCK,
        score=100,
        subject_kind="ip",
        subject="203.0.113.7",
        payment_id=payment_id,
        user_id="user_1",
        observed=11,
        threshold=10,
        window_seconds=60,
        details={"measure": "count"},
        created_at=at,
    )


async def a_signal_is_stored_once_and_found_by_payment(uow_factory) -> None:
    payment_id = f"pay_{uuid.uuid4().hex[:16]}"
    signal = a_signal(payment_id)
    async with uow_factory() as uow:
        first = await uow.fraud_signals.add(signal)
        again = await uow.fraud_signals.add(signal)
        other_rule = await uow.fraud_signals.add(a_signal(payment_id, rule="user_per_minute"))
    async with uow_factory() as uow:
        found = await uow.fraud_signals.for_payment(payment_id)
        newest = await uow.fraud_signals.recent(limit=10_000)

    assert (first, again, other_rule) == (True, False, True)
    assert [s.rule for s in found] == ["ip_per_minute", "user_per_minute"]
    assert found[0] == signal
    assert signal.signal_id in {s.signal_id for s in newest}


async def signals_about_the_traffic_need_no_payment(uow_factory) -> None:
    at = NOW + timedelta(seconds=uuid.uuid4().int % 10_000)
    async with uow_factory() as uow:
        assert await uow.fraud_signals.add(a_signal(None, rule="volume_spike", at=at))
        assert not await uow.fraud_signals.add(a_signal(None, rule="volume_spike", at=at))
        assert await uow.fraud_signals.add(a_signal(None, rule="volume_spike", at=at + timedelta(seconds=1)))


ALERT_CONTRACTS = [
    an_alert_is_stored_and_read_back_whole,
    the_same_key_is_raised_once_per_cooldown,
    other_subjects_have_their_own_cooldown,
    concurrent_raisers_store_one_alert,
    recent_pages_forward_from_a_sequence,
    a_signal_is_stored_once_and_found_by_payment,
    signals_about_the_traffic_need_no_payment,
]

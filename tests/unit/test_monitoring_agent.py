"""The monitoring flow over fakes: analytics facts become counters, polls refresh the gauges."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry

from payments.agents.monitoring import OTHER, label_value, monitoring, poll_queues, poll_reconciliation
from payments.domain.alerts.rules import QueueDepth
from payments.domain.events import OutgoingEvent
from payments.domain.fraud.screen import Assessment
from payments.domain.fraud.signals import FraudSignal, Verdict
from payments.domain.payment.events import PaymentCreated, PaymentEvent, PaymentFailed, PaymentSucceeded
from payments.domain.payment.states import PaymentState
from payments.domain.reconciliation.model import Finding, MismatchKind, ReconciliationRun, RunStatus
from payments.pipeline import metrics as metrics_module
from payments.pipeline.context import AgentContext
from tests.alert_events import message, refund_created, webhook_failure
from tests.contracts_payments import new_payment
from tests.fakes.agents import run_until_settled
from tests.fakes.broker import FakeMessage
from tests.fakes.context import NOW, ScriptedQueueGauge, fake_context
from tests.fakes.storage import InMemoryStore

[COUNT_FACTS] = monitoring.agents


class Metered:
    """A fake context whose metrics land in a registry the test reads."""

    def __init__(self, **overrides: object) -> None:
        self.registry = CollectorRegistry()
        self.context: AgentContext = fake_context(metrics=metrics_module.create(self.registry), **overrides)

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def created(n: int, *, verdict: Verdict = Verdict.ALLOW, rules: tuple[str, ...] = ()) -> FakeMessage:
    """``analytics.payment.created`` of the ``n``-th payment, screened with ``verdict`` by ``rules``."""
    payment = replace(new_payment(), payment_id=f"pay_{n}", status=PaymentState.CREATED)
    signals = [_signal(rule, verdict, payment.payment_id) for rule in rules]
    assessment = Assessment(verdict=verdict, score=90 if rules else 0, signals=signals)
    event = PaymentCreated(
        event_id=f"evt_created_{n}", payment=payment, occurred_at=NOW, assessment=assessment
    )
    return message(_analytics(event))


def _analytics(event: PaymentEvent) -> OutgoingEvent:
    [outgoing] = [out for out in event.outgoing() if out.routing_key.startswith("analytics.")]
    return outgoing


def _signal(rule: str, verdict: Verdict, payment_id: str) -> FraudSignal:
    return FraudSignal(
        rule=rule,
        verdict=verdict,
        score=90,
        subject_kind="ip",
        subject="203.0.113.7",
        payment_id=payment_id,
        user_id="u1",
        observed=6,
        threshold=5,
        window_seconds=60,
        created_at=NOW,
    )


def finished(n: int, *, succeeded: bool, method: str | None) -> FakeMessage:
    """``analytics.payment.success`` or ``.failed`` of the ``n``-th payment, paid with ``method``."""
    state = PaymentState.SUCCESS if succeeded else PaymentState.FAILED
    payment = replace(new_payment(), payment_id=f"pay_{n}", payment_method=method, status=state)
    event_type = PaymentSucceeded if succeeded else PaymentFailed
    return message(_analytics(event_type(event_id=f"evt_finished_{n}", payment=payment, occurred_at=NOW)))


async def test_payment_facts_count_by_status_and_method():
    metered = Metered()

    await run_until_settled(
        COUNT_FACTS,
        metered.context,
        created(1),
        created(2),
        finished(1, succeeded=True, method="UPI"),
        finished(2, succeeded=False, method="card"),
        finished(3, succeeded=False, method=None),
    )

    assert metered.value("payments_payments_total", status="created", method="unknown") == 2
    assert metered.value("payments_payments_total", status="success", method="upi") == 1
    assert metered.value("payments_payments_total", status="failed", method="card") == 1
    assert metered.value("payments_payments_total", status="failed", method="unknown") == 1


async def test_a_created_fact_counts_its_verdict_and_every_rule_that_fired():
    metered = Metered()

    await run_until_settled(
        COUNT_FACTS,
        metered.context,
        created(1),
        created(2, verdict=Verdict.BLOCK, rules=("ip_velocity", "user_velocity")),
        created(3, verdict=Verdict.REVIEW, rules=("ip_velocity",)),
    )

    assert metered.value("payments_fraud_verdicts_total", verdict="allow") == 1
    assert metered.value("payments_fraud_verdicts_total", verdict="block") == 1
    assert metered.value("payments_fraud_verdicts_total", verdict="review") == 1
    assert metered.value("payments_fraud_signals_total", rule="ip_velocity") == 2
    assert metered.value("payments_fraud_signals_total", rule="user_velocity") == 1


async def test_refunds_count_and_webhook_failures_are_acknowledged_uncounted():
    metered = Metered()
    failure = webhook_failure(n=1, at=NOW)

    await run_until_settled(
        COUNT_FACTS, metered.context, refund_created(n=1, at=NOW), refund_created(n=2, at=NOW), failure
    )

    assert metered.value("payments_refunds_requested_total") == 2
    assert failure.settled == "acked"
    assert metered.value("payments_agent_messages_total", agent=COUNT_FACTS.name, outcome="ok") == 3


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("UPI", "upi"),
        ("net_banking", "net_banking"),
        ("card; DROP TABLE", OTHER),
        ("x" * 49, OTHER),
        ("", OTHER),
    ],
)
def test_only_plain_names_become_label_values(text, label):
    assert label_value(text) == label


async def test_the_queue_poll_sets_ready_messages_and_consumers_per_queue():
    gauge = ScriptedQueueGauge(
        [QueueDepth("payments.commands", 7, 2), QueueDepth("payments.commands.dlq", 1, 0)]
    )
    metered = Metered(queues=gauge)

    await poll_queues(metered.context)
    gauge.current = [QueueDepth("payments.commands", 0, 2), QueueDepth("payments.commands.dlq", 1, 0)]
    await poll_queues(metered.context)

    assert metered.value("payments_queue_messages", queue="payments.commands") == 0
    assert metered.value("payments_queue_consumers", queue="payments.commands") == 2
    assert metered.value("payments_queue_messages", queue="payments.commands.dlq") == 1


async def test_the_reconciliation_poll_reports_every_kind_with_its_open_items():
    store = InMemoryStore()
    metered = Metered(store=store)
    run = ReconciliationRun(
        run_id="rec_1",
        start=NOW - timedelta(days=1),
        end=NOW,
        status=RunStatus.RUNNING,
        trigger="schedule",
        rule_version="1",
        started_at=NOW,
    )
    findings = [_finding(MismatchKind.MISSING_SETTLEMENT, n) for n in (1, 2)]
    async with store.unit_of_work() as uow:
        await uow.reconciliation.start_run(run)
        await uow.reconciliation.record_findings(run, findings, NOW)

    await poll_reconciliation(metered.context)

    assert metered.value("payments_reconciliation_open_items", kind="missing_settlement") == 2
    for kind in set(MismatchKind) - {MismatchKind.MISSING_SETTLEMENT}:
        assert metered.registry.get_sample_value("payments_reconciliation_open_items", {"kind": kind}) == 0


def _finding(kind: MismatchKind, n: int) -> Finding:
    return Finding(
        kind=kind, key=f"{kind}:pay_{n}", payment_id=f"pay_{n}", ours=None, theirs=None, difference={"n": n}
    )

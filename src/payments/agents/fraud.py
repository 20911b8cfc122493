"""The fraud flow: keep the fraud tables from payment events, and alert admins on volume spikes.

The payment service screens each create synchronously (``agents/fraud_tables.py``); this agent keeps
the same tables from the events, which makes them rebuildable: on ``payment.created`` it re-applies
the payment from the subjects the event carries (a no-op live, since the screen already counted it;
the rebuild after a replay or a lost Redis), and on ``payment.failed`` it counts the failure against
the user and the client IP. Then it evaluates the spike rule at the event's time.

Table updates come first and happen whether or not the event was seen before: tables are idempotent
per event id, and a replay must rebuild them even though the inbox already holds the event. Database
effects (the spike's signal and alert) happen only under a new inbox claim.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

from payments.agents.fraud_tables import FraudTables, fraud_tables
from payments.domain.alerts.service import raise_alert
from payments.domain.errors import PaymentsError
from payments.domain.fraud.scoring import judge_spike, spike_alert
from payments.domain.money import Money
from payments.pipeline import topology
from payments.pipeline.blueprint import Blueprint
from payments.pipeline.context import AgentContext
from payments.pipeline.stream import Stream

logger = logging.getLogger(__name__)

fraud = Blueprint("fraud")

#: The inbox consumer name of this flow's database effects.
CONSUMER: Final = "fraud"


class _Payload(BaseModel):
    # Tolerant: payment events gain fields over time; this agent reads only what it needs.
    model_config = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)


class RiskPayload(_Payload):
    """``risk`` of ``payment.created``: the screen's verdict and the subjects it counted the payment under."""

    verdict: str
    score: int
    rules: list[str] = []
    subjects: dict[str, str] = {}


class PaymentEventPayload(_Payload):
    """A payment event (``domain/payment/events.py``) as far as fraud reads it."""

    event_id: str
    type: str
    occurred_at: AwareDatetime
    payment_id: str
    user_id: str
    amount: Decimal
    currency: str
    client_ip: str | None = None
    risk: RiskPayload | None = None

    @model_validator(mode="after")
    def _is_money(self) -> Self:
        try:
            self.money  # noqa: B018 - validates amount and currency together
        except PaymentsError as invalid:
            raise ValueError(invalid.message) from None
        return self

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


@fraud.agent(topology.FRAUD_PAYMENTS, value_type=PaymentEventPayload, concurrency=4, replayable=True)
async def watch_payments(stream: Stream[PaymentEventPayload], ctx: AgentContext) -> None:
    """Keep the fraud tables from payment events (rebuilding them on replay); alert on volume spikes."""
    tables = fraud_tables(ctx)
    async for event in stream:
        if not ctx.settings.fraud.enabled:
            continue
        payment = event.value
        await apply_to_tables(tables, payment)
        await check_spike(ctx, tables, event_id=event.event_id, at=payment.occurred_at)


async def apply_to_tables(tables: FraudTables, payment: PaymentEventPayload) -> None:
    """Count ``payment``'s event in the tables (idempotent: each is counted once, however often seen)."""
    if payment.type == "payment.created" and payment.risk is not None and payment.risk.subjects:
        await tables.record(
            payment_id=payment.payment_id,
            subjects=payment.risk.subjects,
            amount=payment.money,
            at=payment.occurred_at,
        )
    elif payment.type == "payment.failed":
        await tables.record_failure(
            payment.payment_id,
            payment.user_id,
            payment.client_ip,
            payment.occurred_at,
            failure_id=payment.event_id,
        )


async def check_spike(ctx: AgentContext, tables: FraudTables, *, event_id: str, at: datetime) -> None:
    """Judge the volume at ``at``; a spike is stored as a signal and alerted once per cooldown."""
    rule = tables.rules.spike
    if rule is None:
        return
    current, baseline = await tables.spike(at)
    signal = judge_spike(rule, current=current, baseline=baseline, window_start=tables.spike_window_start(at))
    if signal is None:
        return
    cooldown = timedelta(seconds=ctx.settings.fraud.alert_cooldown_seconds)
    async with ctx.unit_of_work() as uow:
        if not await uow.inbox.claim(consumer=CONSUMER, event_id=event_id):
            return  # seen before: its effects are already stored
        await uow.fraud_signals.add(signal)
        raised = await raise_alert(uow, spike_alert(signal, raised_at=at), cooldown=cooldown)
    if raised:
        logger.warning("payment volume spike: %d payments in %d s", signal.observed, signal.window_seconds)

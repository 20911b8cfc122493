"""The payment service: create, verify and expire payments, with the gateway as the source of truth.

Every change goes through ``_apply``: one transaction that re-reads the payment under a row lock,
moves it through the transition table, saves it with the SQL guard, records the gateway attempts,
and writes the audit row and the outgoing events. Gateway calls for one payment are serialised by
``PaymentLocks``; the guarded UPDATE keeps the payment right even if a lock expires mid-call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from payments.domain.alerts.model import Alert, Severity
from payments.domain.alerts.service import raise_alert
from payments.domain.audit.model import AuditEntry
from payments.domain.clock import Clock
from payments.domain.errors import Conflict, GatewayRejected, NotFound, ValidationFailed
from payments.domain.fraud.scoring import fraud_alert
from payments.domain.fraud.screen import (
    AllowEverything,
    Assessment,
    FraudScreen,
    PaymentAttempt,
    PaymentBlocked,
)
from payments.domain.fraud.signals import Verdict
from payments.domain.gateway import (
    Customer,
    GatewayAttempt,
    GatewayOrder,
    GatewaySettlement,
    OrderRequest,
    PaymentGateway,
)
from payments.domain.locks import PaymentLocks
from payments.domain.payment.commands import Actor, CreatePayment, VerifyPayment
from payments.domain.payment.decisions import AmountMismatch, Decision, check_integrity, decide
from payments.domain.payment.events import (
    PaymentCancelled,
    PaymentCreated,
    PaymentEvent,
    PaymentFailed,
    PaymentProcessing,
    PaymentSettled,
    PaymentSucceeded,
)
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PAYMENT_TRANSITIONS, PaymentState, PaymentTrigger, sources_of
from payments.domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

#: The actor of changes nobody asked for directly (the expiry job, reconciliation).
SYSTEM = Actor(actor_id="system", trace_id="0" * 32, request_id="system")
_UNPAID: Final = frozenset({PaymentState.CREATED, PaymentState.PENDING, PaymentState.FAILED})
#: Cashfree (and most gateways) want a short alphanumeric customer id; ours may be anything.
_CUSTOMER_ID: Final = re.compile(r"[^A-Za-z0-9_-]")
#: The failure reason of a payment fraud screening refused; a repeated create recognises it by this.
BLOCKED_REASON: Final = "blocked by fraud screening"
#: How long one fraud alert (kind and subject) stays quiet after it was raised, unless told otherwise.
DEFAULT_FRAUD_ALERT_COOLDOWN: Final = timedelta(minutes=15)
#: One amount-mismatch alert per payment per this long: verifying the payment again repeats the news.
MISMATCH_ALERT_COOLDOWN: Final = timedelta(minutes=15)
#: Payments a settlement proves were paid although we never saw the success: the gateway is asked first.
_NOT_YET_CAPTURED: Final = sources_of(PaymentTrigger.SUCCEED)
#: Our word for a payment the gateway paid out (the payments table's settlement_status vocabulary).
SETTLED: Final = "SETTLED"


class PaymentService:
    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        gateway: PaymentGateway,
        locks: PaymentLocks,
        clock: Clock,
        fraud: FraudScreen | None = None,
        fraud_alert_cooldown: timedelta = DEFAULT_FRAUD_ALERT_COOLDOWN,
    ) -> None:
        self._uow = unit_of_work
        self._gateway = gateway
        self._locks = locks
        self._clock = clock
        self._fraud: FraudScreen = fraud if fraud is not None else AllowEverything()
        self._fraud_alert_cooldown = fraud_alert_cooldown

    async def create(self, command: CreatePayment) -> Payment:
        """Screen and record the payment (once), then open its gateway order (once). Safe to repeat.

        A payment fraud screening blocks is recorded already cancelled, with its signals and alerts,
        and ``PaymentBlocked`` is raised; asking again for the same payment raises it again.
        """
        payment = await self._record(command)
        if _was_blocked(payment):
            raise PaymentBlocked(await self._blocked_message(payment))
        if payment.status is PaymentState.CREATED:
            payment = await self._open_order(payment, command)
        return payment

    async def verify(self, command: VerifyPayment) -> Payment:
        """Settle the payment's state from what the gateway says about its order and attempts."""
        payment = await self.find(command.actor, payment_id=command.payment_id, order_id=command.order_id)
        return await self.reconcile(payment, command.actor)

    async def find(
        self, actor: Actor, *, payment_id: str | None = None, order_id: str | None = None
    ) -> Payment:
        """A payment its owner (or an admin) may see; to anyone else it does not exist (``NotFound``)."""
        if not (payment_id or order_id):
            raise ValidationFailed("give a paymentId or an orderId")
        async with self._uow() as uow:
            if payment_id:
                payment = await uow.payments.get(payment_id)
            else:
                payment = await uow.payments.get_by_order_id(order_id or "")
        if not actor.may_see(payment.user_id):
            raise NotFound(f"payment {payment_id or order_id} not found")
        return payment

    async def reconcile(self, payment: Payment, actor: Actor) -> Payment:
        """Ask the gateway and apply what it says (a late success always wins)."""
        if payment.status is PaymentState.CREATED or _was_blocked(payment):
            return payment  # no gateway order (yet, or ever): nothing to ask
        async with self._locks.hold(payment.payment_id):
            order = await self._gateway.get_order(payment.order_id)
            attempts = await self._gateway.list_attempts(payment.order_id)
            try:
                check_integrity(payment, order, attempts)
            except AmountMismatch as mismatch:
                await self._record_mismatch(payment, order, mismatch, actor)
                raise
            return await self._apply(payment, decide(payment, order, attempts), actor, attempts=attempts)

    async def expire_due(self, *, limit: int) -> int:
        """Expire unpaid payments whose order expired, after asking the gateway; how many expired."""
        async with self._uow() as uow:
            due = await uow.payments.due_for_expiry(now=self._clock.now(), limit=limit)
        expired = 0
        for payment in due:
            current = await self.reconcile(payment, SYSTEM)
            if current.status in _UNPAID:
                current = await self._apply(current, Decision(PaymentTrigger.EXPIRE, {}), SYSTEM)
            expired += current.status is PaymentState.EXPIRED
        return expired

    async def settle(
        self, settlement: GatewaySettlement, actor: Actor, *, inbox_consumer: str | None = None
    ) -> Payment | None:
        """Record the gateway's settlement of one order and move its payment to SETTLED.

        The settlement is stored whatever our payment says (an unknown order is kept with no payment,
        an orphan the reconciliation run reports; None is returned). A payment we still think unpaid is
        first confirmed with the gateway: the settlement proves money was captured, and a late success
        wins. Only a SUCCESS payment moves to SETTLED; one already settled or refunded keeps its state.
        With ``inbox_consumer``, the write claims (consumer, settlement key) in the same transaction,
        so a redelivered settlement changes nothing. Safe to repeat in any case.
        """
        try:
            async with self._uow() as uow:
                payment: Payment | None = await uow.payments.get_by_order_id(settlement.order_id)
        except NotFound:
            payment = None
        if payment is not None and payment.status in _NOT_YET_CAPTURED:
            payment = await self._confirm_capture(payment, actor)
        return await self._record_settlement(settlement, payment, actor, inbox_consumer)

    async def _confirm_capture(self, payment: Payment, actor: Actor) -> Payment:
        try:
            return await self.reconcile(payment, actor)
        except AmountMismatch:
            # Recorded and alerted by reconcile; the settlement is still kept, and the run reports it.
            return payment

    async def _record_settlement(
        self,
        settlement: GatewaySettlement,
        payment: Payment | None,
        actor: Actor,
        inbox_consumer: str | None,
    ) -> Payment | None:
        now = self._clock.now()
        async with self._uow() as uow:
            if inbox_consumer is not None:
                claimed = await uow.inbox.claim(consumer=inbox_consumer, event_id=settlement_key(settlement))
                if not claimed:
                    return payment  # this settlement was applied before: a redelivery
            current = None if payment is None else await uow.payments.get(payment.payment_id, for_update=True)
            await uow.settlements.record(settlement, None if current is None else current.payment_id, now=now)
            if current is None or current.status is not PaymentState.SUCCESS:
                return current
            if settlement.order_amount != current.amount:
                # Kept as evidence, but a payout for another amount does not settle this payment: the
                # reconciliation run reports the difference for someone to look at.
                return current
            changes = {"settlement_status": SETTLED, "settlement_amount": settlement.settlement_amount}
            return await _move(uow, current, Decision(PaymentTrigger.SETTLE, changes), actor, now)

    async def _record(self, command: CreatePayment) -> Payment:
        now = self._clock.now()
        new = Payment(
            payment_id=command.payment_id,
            order_id=command.order_id,
            user_id=command.user_id,
            amount=command.amount,
            status=PaymentState.CREATED,
            customer=command.customer,
            gateway=self._gateway.name,
            description=command.description,
            metadata=command.metadata,
            return_url=command.return_url,
            idempotency_key=command.idempotency_key,
            request_hash=command.request_hash,
            client_ip=command.actor.ip_address,
            device_fingerprint=command.device_fingerprint,
            created_at=now,
            updated_at=now,
        )
        # Screened before the insert: the tables count the attempt once per payment id, so a repeated
        # create changes no count, and its verdict is ignored (the first one stands).
        assessment = await self._fraud.assess(_attempt_of(new))
        async with self._uow() as uow:
            if not await uow.payments.add(new):
                return _same_request(await uow.payments.get(command.payment_id), command)
            created = PaymentCreated(
                event_id=event_id(new), payment=new, occurred_at=now, assessment=assessment
            )
            await _publish(uow, created)
            await self._record_fraud(uow, assessment, now)
            # After the other writes: the audit chain's lock is held from here to commit (see ``_move``).
            await uow.audit.append(_audit(command.actor, "payment.created", None, new, now))
            if assessment.verdict is Verdict.BLOCK:
                # In the same transaction as the insert: no one ever sees the blocked payment open.
                cancel = Decision(PaymentTrigger.CANCEL, {"failure_reason": BLOCKED_REASON})
                new = await _move(uow, new, cancel, command.actor, now)
        return new

    async def _record_fraud(self, uow: UnitOfWork, assessment: Assessment, now: datetime) -> None:
        """Store the screen's signals, and alert admins about the rules that want review or a block."""
        for signal in assessment.signals:
            await uow.fraud_signals.add(signal)
        alerts: dict[str, Alert] = {}
        # Rules about one subject with one verdict share an alert (and its cooldown): it tells of the
        # strongest of them (the first configured, among equals).
        for signal in sorted(assessment.signals, key=lambda s: -s.score):
            if signal.verdict is not Verdict.ALLOW:
                alert = fraud_alert(signal, raised_at=now)
                alerts.setdefault(alert.dedup_key, alert)
        # Raised in key order: the alert repository locks each key, and one order cannot deadlock.
        for key in sorted(alerts):
            await raise_alert(uow, alerts[key], cooldown=self._fraud_alert_cooldown)

    async def _blocked_message(self, payment: Payment) -> str:
        async with self._uow() as uow:
            signals = await uow.fraud_signals.for_payment(payment.payment_id)
        rules = sorted({s.rule for s in signals if s.verdict is Verdict.BLOCK})
        named = f" (rules: {', '.join(rules)})" if rules else ""
        return f"payment {payment.payment_id} was blocked by fraud screening{named}"

    async def _open_order(self, payment: Payment, command: CreatePayment) -> Payment:
        async with self._locks.hold(payment.payment_id):
            async with self._uow() as uow:
                payment = await uow.payments.get(payment.payment_id)
            if payment.status is not PaymentState.CREATED:
                return payment  # another worker opened it while we waited for the lock
            try:
                order = await self._gateway.create_order(_order_request(payment, command))
            except GatewayRejected as rejected:
                reason = f"gateway rejected the order: {rejected.gateway_code or rejected.message}"
                await self._apply(
                    payment, Decision(PaymentTrigger.CANCEL, {"failure_reason": reason}), command.actor
                )
                raise
            if order.amount != payment.amount:
                mismatch = AmountMismatch(f"gateway opened {order.order_id} for {order.amount}")
                await self._record_mismatch(payment, order, mismatch, command.actor)
                raise mismatch
            return await self._apply(payment, Decision(PaymentTrigger.OPEN, _opened(order)), command.actor)

    async def _apply(
        self, payment: Payment, decision: Decision, actor: Actor, *, attempts: Sequence[GatewayAttempt] = ()
    ) -> Payment:
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.payments.get(payment.payment_id, for_update=True)
            for attempt in attempts:
                await uow.payments.record_attempt(current.payment_id, attempt, now=now)
            return await _move(uow, current, decision, actor, now)

    async def _record_mismatch(
        self, payment: Payment, order: GatewayOrder, mismatch: AmountMismatch, actor: Actor
    ) -> None:
        now = self._clock.now()
        theirs = {
            "orderId": order.order_id,
            "amount": str(order.amount.amount),
            "currency": order.amount.currency,
        }
        async with self._uow() as uow:
            await uow.audit.append(
                _audit(actor, "payment.verify_mismatch", payment, payment, now, extra={"gateway": theirs})
            )
            # One shape for every admin alert: stored, streamed to the admin page and mailed.
            alert = Alert(
                kind="payment_amount_mismatch",
                subject=f"payment:{payment.payment_id}",
                severity=Severity.CRITICAL,
                title="The gateway's amount differs from the payment's; the payment was not credited",
                details={
                    "paymentId": payment.payment_id,
                    "orderId": order.order_id,
                    "ourAmount": str(payment.amount.amount),
                    "ourCurrency": payment.amount.currency,
                    "gatewayAmount": theirs["amount"],
                    "gatewayCurrency": theirs["currency"],
                    "message": mismatch.message,
                },
                since=now,
                raised_at=now,
                source="payments",
            )
            await raise_alert(uow, alert, cooldown=MISMATCH_ALERT_COOLDOWN)


class IdempotencyKeyReused(Conflict):
    """This idempotency key already made a payment for a different request."""

    code = "idempotency_key_reused"


def _same_request(existing: Payment, command: CreatePayment) -> Payment:
    """The payment a repeated create finds, if it was made by the same request.

    The ids come from the user and the key, so a key reused (after the web layer forgot it, 24 h on)
    for another amount would otherwise silently hand back the old payment.
    """
    hashes = (existing.request_hash, command.request_hash)
    other_body = all(hashes) and hashes[0] != hashes[1]
    if other_body or existing.amount != command.amount:
        raise IdempotencyKeyReused(f"payment {existing.payment_id} was made by a different request")
    return existing


async def _move(
    uow: UnitOfWork, current: Payment, decision: Decision, actor: Actor, now: datetime
) -> Payment:
    """Apply ``decision`` to ``current`` in ``uow``: guarded save, audit row, event; or nothing to do."""
    trigger = decision.trigger
    if trigger is None or (current.status, trigger) not in PAYMENT_TRANSITIONS:
        return current  # nothing to do, or someone already did it
    after = current.moved(trigger, now=now, **decision.changes)
    await uow.payments.save(current, after, trigger)
    event = _event_for(trigger, after, now)
    if event is not None:
        await _publish(uow, event)
    # Last: the audit chain's lock is held from here to commit, and serialises every audited change.
    await uow.audit.append(_audit(actor, f"payment.{trigger.value}", current, after, now))
    return after


def _attempt_of(payment: Payment) -> PaymentAttempt:
    return PaymentAttempt(
        payment_id=payment.payment_id,
        user_id=payment.user_id,
        amount=payment.amount,
        at=payment.created_at,
        ip_address=payment.client_ip,
        device_fingerprint=payment.device_fingerprint,
        email=payment.customer.email,
        phone=payment.customer.phone or None,
    )


def _was_blocked(payment: Payment) -> bool:
    return payment.status is PaymentState.CANCELLED and payment.failure_reason == BLOCKED_REASON


def settlement_key(settlement: GatewaySettlement) -> str:
    """One key per order in one payout: a settlement reported twice is the same settlement."""
    return f"settlement:{settlement.settlement_id}:{settlement.order_id}"


def event_id(payment: Payment) -> str:
    """One id per version of a payment: a retried transaction can never emit a second, different event."""
    return f"evt_{payment.payment_id}_v{payment.version}"


#: The event each transition publishes; opening an order is internal, refunds publish their own.
_EVENT_TYPES: Final[Mapping[PaymentTrigger, type[PaymentEvent]]] = {
    PaymentTrigger.AUTHORIZE: PaymentProcessing,
    PaymentTrigger.PROCESS: PaymentProcessing,
    PaymentTrigger.SUCCEED: PaymentSucceeded,
    PaymentTrigger.FAIL: PaymentFailed,
    PaymentTrigger.CANCEL: PaymentCancelled,
    PaymentTrigger.EXPIRE: PaymentCancelled,
    PaymentTrigger.SETTLE: PaymentSettled,
}


def _event_for(trigger: PaymentTrigger, payment: Payment, now: datetime) -> PaymentEvent | None:
    kind = _EVENT_TYPES.get(trigger)
    return None if kind is None else kind(event_id=event_id(payment), payment=payment, occurred_at=now)


async def _publish(uow: UnitOfWork, event: PaymentEvent) -> None:
    await uow.outbox.add_all(event.outgoing())


def _opened(order: GatewayOrder) -> dict[str, object]:
    return {
        "gateway_order_id": order.gateway_order_id,
        "session_id": order.session_id,
        "order_expires_at": order.expires_at,
    }


def _order_request(payment: Payment, command: CreatePayment) -> OrderRequest:
    return OrderRequest(
        order_id=payment.order_id,
        amount=payment.amount,
        customer=Customer(
            customer_id=gateway_customer_id(payment.user_id),
            phone=payment.customer.phone,
            email=payment.customer.email,
            name=payment.customer.name,
        ),
        return_url=payment.return_url,
        notify_url=command.notify_url,
        note=payment.description,
        tags={"paymentId": payment.payment_id},
    )


def gateway_customer_id(user_id: str) -> str:
    """A customer id the gateway accepts (3 to 50 of [A-Za-z0-9_-]), stable per user."""
    cleaned = _CUSTOMER_ID.sub("_", user_id)
    if 3 <= len(cleaned) <= 50 and cleaned == user_id:
        return cleaned
    return "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:32]


def _audit(
    actor: Actor,
    action: str,
    before: Payment | None,
    after: Payment,
    now: datetime,
    *,
    extra: dict[str, object] | None = None,
) -> AuditEntry:
    return actor.audit(
        action,
        resource_type="payment",
        resource_id=after.payment_id,
        before=before.snapshot() if before else None,
        after={**after.snapshot(), **(extra or {})},
        now=now,
    )

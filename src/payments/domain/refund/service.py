"""The refund engine: refunds that can never exceed what was captured.

The balance check and the refund row are written in one transaction that holds the payment's row
lock (``SELECT ... FOR UPDATE``): however requests, retries and workers interleave, the sum of the
refunds that hold balance never exceeds the captured amount. Only then is the gateway asked, under
``lock:payment:{id}``, with our refund id, so a retry can never make a second refund at Cashfree.
Every later change (the gateway's answer, its webhooks, the poll) goes through ``_apply``, which
moves the refund, and the payment when a refund succeeds, in one transaction with audit and events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from payments.domain.audit.model import AuditEntry
from payments.domain.clock import Clock
from payments.domain.errors import Conflict, GatewayRejected, NotFound, ValidationFailed
from payments.domain.events import OutgoingEvent
from payments.domain.gateway import GatewayRefund, GatewayRefundStatus, PaymentGateway, RefundRequest
from payments.domain.locks import PaymentLocks
from payments.domain.payment.commands import Actor
from payments.domain.payment.events import PaymentRefunded
from payments.domain.payment.model import Payment
from payments.domain.payment.states import PAYMENT_TRANSITIONS, PaymentState, PaymentTrigger
from payments.domain.refund.commands import RequestRefund
from payments.domain.refund.model import REFUND_WINDOW, Refund, committed, refunded
from payments.domain.refund.states import (
    FROM_GATEWAY,
    REFUND_TRANSITIONS,
    RefundState,
    RefundTrigger,
    path_to,
)
from payments.domain.unit_of_work import UnitOfWork, UnitOfWorkFactory

#: Payments money can be refunded from. REFUNDED is among them because a bank reversal gives a refund's
#: amount back: the balance check, not the state, decides how much is left.
REFUNDABLE: Final = frozenset(
    {PaymentState.SUCCESS, PaymentState.SETTLED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
)


class RefundExceedsBalance(ValidationFailed):
    """The refund is more than what is left to refund of this payment."""

    code = "refund_exceeds_balance"


class PaymentNotRefundable(Conflict):
    """Only a captured payment can be refunded."""

    code = "payment_not_refundable"


class RefundWindowClosed(ValidationFailed):
    """The payment is older than the gateway's refund window (six months)."""

    code = "refund_window_closed"


class RefundIdReused(Conflict):
    """This refund id (idempotency key) already made a different refund."""

    code = "idempotency_key_reused"


class RefundService:
    def __init__(
        self,
        *,
        unit_of_work: UnitOfWorkFactory,
        gateway: PaymentGateway,
        locks: PaymentLocks,
        clock: Clock,
        on_settled: Callable[[Refund], None] | None = None,
    ) -> None:
        self._uow = unit_of_work
        self._gateway = gateway
        self._locks = locks
        self._clock = clock
        #: Told of every refund that reached SUCCESS or FAILED, after its transaction committed.
        self._on_settled = on_settled

    async def request(self, command: RequestRefund) -> Refund:
        """Reserve the amount (once), then ask the gateway (once). Safe to repeat."""
        refund = await self._reserve(command)
        if refund.status is RefundState.INITIATED:
            refund = await self._submit(refund, command.actor)
        return refund

    async def find(self, actor: Actor, refund_id: str) -> Refund:
        """A refund its payment's owner (or an admin) may see; to anyone else it does not exist."""
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id)
            payment = await uow.payments.get(refund.payment_id)
        _check_owner(actor, payment, refund_id)
        return refund

    async def apply_gateway_status(self, refund: Refund, answer: GatewayRefund, actor: Actor) -> Refund:
        """Move the refund to where the gateway says it is (a webhook, a poll, the create's answer)."""
        target = FROM_GATEWAY.get(answer.status)
        if target is None:
            return refund  # a status we do not know: changes nothing
        changes = {
            "gateway_refund_id": answer.gateway_refund_id,
            "status_description": answer.status_description,
        }
        current = refund
        for trigger in path_to(refund.status, target):
            current = await self._apply(current, trigger, changes, actor)
        if not path_to(refund.status, target) and answer.status is GatewayRefundStatus.ONHOLD:
            current = await self._apply(current, None, changes, actor)  # keep why it is on hold
        return current

    async def reverse(self, refund_id: str, actor: Actor, *, reason: str) -> Refund:
        """The bank sent a successful refund back: REVERSED, balance restored. Nothing calls it yet: Cashfree
        reports reversals only in its recon (REFUND_REVERSAL), which reconciliation reports as an
        inconsistent refund for an operator to apply."""
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id)
        return await self._apply(refund, RefundTrigger.REVERSE, {"status_description": reason}, actor)

    async def sync(self, refund_id: str, actor: Actor) -> Refund:
        """Ask the gateway about one refund and apply its answer (the poll for stuck refunds)."""
        async with self._uow() as uow:
            refund = await uow.refunds.get(refund_id)
        if refund.status is RefundState.INITIATED:
            return await self._submit(refund, actor)
        answer = await self._gateway.get_refund(refund.order_id, refund.refund_id)
        return await self.apply_gateway_status(refund, answer, actor)

    async def _reserve(self, command: RequestRefund) -> Refund:
        now = self._clock.now()
        async with self._uow() as uow:
            payment = await uow.payments.get(command.payment_id, for_update=True)  # the balance guard
            _check_owner(command.actor, payment, command.payment_id)
            try:
                return _same_request(await uow.refunds.get(command.refund_id), command)
            except NotFound:
                pass
            _check_refundable(payment, command, now)
            balance = payment.amount - committed(
                await uow.refunds.for_payment(payment.payment_id), payment.amount.currency
            )
            if command.amount > balance:
                raise RefundExceedsBalance(f"{command.amount} asked, {balance} left to refund")
            refund = _new_refund(payment, command, now)
            await uow.refunds.add(refund)
            await uow.audit.append(_audit(command.actor, "refund.initiated", None, refund, now))
            await uow.outbox.add(_refund_event(refund, "analytics.refund.created", now))
        return refund

    async def _submit(self, refund: Refund, actor: Actor) -> Refund:
        async with self._locks.hold(refund.payment_id):
            async with self._uow() as uow:
                current = await uow.refunds.get(refund.refund_id)
            if current.status is not RefundState.INITIATED:
                return current  # another worker submitted it while we waited for the lock
            request = RefundRequest(
                order_id=current.order_id,
                refund_id=current.refund_id,
                amount=current.amount,
                note=current.reason[:100] or None,
                speed=current.speed,
            )
            try:
                answer = await self._gateway.create_refund(request)
            except GatewayRejected as rejected:
                reason = {"status_description": f"refused: {rejected.gateway_code or rejected.message}"}
                return await self._apply(current, RefundTrigger.FAIL, reason, actor)
            return await self.apply_gateway_status(current, answer, actor)

    async def _apply(
        self, refund: Refund, trigger: RefundTrigger | None, changes: dict[str, Any], actor: Actor
    ) -> Refund:
        now = self._clock.now()
        async with self._uow() as uow:
            payment = await uow.payments.get(refund.payment_id, for_update=True)
            current = await uow.refunds.get(refund.refund_id)
            if trigger is not None and (current.status, trigger) not in REFUND_TRANSITIONS:
                return current  # already there, or past it
            fields = {key: value for key, value in changes.items() if value is not None}
            after = current.moved(trigger, now=now, **fields) if trigger else _updated(current, now, fields)
            await uow.refunds.save(current, after, trigger)
            await uow.audit.append(
                _audit(actor, f"refund.{trigger.value if trigger else 'update'}", current, after, now)
            )
            await self._announce(uow, after, trigger, now)
            if after.status is RefundState.SUCCESS and trigger is RefundTrigger.SUCCEED:
                await self._refund_payment(uow, payment, actor, now)
        if self._on_settled is not None and trigger in {RefundTrigger.SUCCEED, RefundTrigger.FAIL}:
            self._on_settled(after)
        return after

    async def _announce(
        self, uow: UnitOfWork, refund: Refund, trigger: RefundTrigger | None, now: datetime
    ) -> None:
        # The customer hears when the gateway took the refund (with its ETA) and when it ended.
        if trigger in {RefundTrigger.SUBMIT, RefundTrigger.SUCCEED, RefundTrigger.FAIL}:
            await uow.outbox.add(_refund_event(refund, "email.payment.refund", now))

    async def _refund_payment(self, uow: UnitOfWork, payment: Payment, actor: Actor, now: datetime) -> None:
        back = refunded(await uow.refunds.for_payment(payment.payment_id), payment.amount.currency)
        trigger = PaymentTrigger.REFUND_ALL if back >= payment.amount else PaymentTrigger.REFUND_PART
        if (payment.status, trigger) not in PAYMENT_TRANSITIONS:
            return  # already PARTIALLY_REFUNDED and still partial: nothing to move
        after = payment.moved(trigger, now=now)
        await uow.payments.save(payment, after, trigger)
        await uow.audit.append(
            actor.audit(
                f"payment.{trigger.value}",
                resource_type="payment",
                resource_id=payment.payment_id,
                before=payment.snapshot(),
                after=after.snapshot(),
                now=now,
            )
        )
        event = PaymentRefunded(
            event_id=f"evt_{after.payment_id}_v{after.version}",
            payment=after,
            occurred_at=now,
            refunded=str(back.amount),
        )
        for message in event.outgoing():
            await uow.outbox.add(message)


def _check_owner(actor: Actor, payment: Payment, what: str) -> None:
    if not actor.may_see(payment.user_id):
        raise NotFound(f"{what} not found")


def _check_refundable(payment: Payment, command: RequestRefund, now: datetime) -> None:
    if payment.status not in REFUNDABLE:
        raise PaymentNotRefundable(f"payment {payment.payment_id} is {payment.status.value}")
    if now - payment.created_at > REFUND_WINDOW:
        raise RefundWindowClosed(f"payment {payment.payment_id} is past the refund window")
    if command.amount.currency != payment.amount.currency or not command.amount.is_positive():
        raise ValidationFailed("a refund is a positive amount in the payment's currency")


def _same_request(existing: Refund, command: RequestRefund) -> Refund:
    if existing.payment_id != command.payment_id or existing.amount != command.amount:
        raise RefundIdReused(f"refund {existing.refund_id} was made by a different request")
    return existing


def _new_refund(payment: Payment, command: RequestRefund, now: datetime) -> Refund:
    return Refund(
        refund_id=command.refund_id,
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        amount=command.amount,
        reason=command.reason,
        status=RefundState.INITIATED,
        speed=command.speed,
        idempotency_key=command.idempotency_key,
        created_at=now,
        updated_at=now,
    )


def _updated(refund: Refund, now: datetime, fields: dict[str, Any]) -> Refund:
    return replace(refund, version=refund.version + 1, updated_at=now, **fields)


def _refund_event(refund: Refund, routing_key: str, now: datetime) -> OutgoingEvent:
    return OutgoingEvent(
        event_id=f"refund_{refund.refund_id}_v{refund.version}_{routing_key}",
        routing_key=routing_key,
        payload={
            "schemaVersion": 1,
            "refundId": refund.refund_id,
            "paymentId": refund.payment_id,
            "orderId": refund.order_id,
            "amount": str(refund.amount.amount),
            "currency": refund.amount.currency,
            "status": refund.status.value,
            "speed": refund.speed.value,
            "reason": refund.reason,
            "statusDescription": refund.status_description,
            "occurredAt": now.isoformat(),
        },
        occurred_at=now,
    )


def _audit(actor: Actor, action: str, before: Refund | None, after: Refund, now: datetime) -> AuditEntry:
    return actor.audit(
        action,
        resource_type="refund",
        resource_id=after.refund_id,
        before=before.snapshot() if before else None,
        after=after.snapshot(),
        now=now,
    )

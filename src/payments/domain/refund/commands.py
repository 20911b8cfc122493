"""What callers ask of the refund service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import TypeAdapter

from payments.domain.gateway import RefundSpeed
from payments.domain.money import Money
from payments.domain.payment.commands import Actor


@dataclass(frozen=True, kw_only=True)
class RequestRefund:
    """Refund ``amount`` of a captured payment; ``refund_id`` is derived from the caller's key."""

    kind: Literal["request_refund"] = "request_refund"
    refund_id: str
    payment_id: str
    amount: Money
    reason: str
    speed: RefundSpeed = RefundSpeed.STANDARD
    idempotency_key: str | None = None
    actor: Actor


#: A refund command as it travels on ``command.exchange`` (``command.refund.initiate``).
REFUND_COMMANDS: TypeAdapter[RequestRefund] = TypeAdapter(RequestRefund)

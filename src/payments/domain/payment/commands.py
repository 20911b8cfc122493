"""What callers ask of the payment service (imperative names; STYLE §14)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import Field, TypeAdapter

from payments.domain.audit.model import AuditEntry
from payments.domain.money import Money
from payments.domain.payment.model import CustomerDetails


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who asked, from where, under which request: what every audit row records."""

    actor_id: str | None
    ip_address: str | None = None
    user_agent: str | None = None
    trace_id: str
    request_id: str
    is_admin: bool = False

    def may_see(self, owner_id: str) -> bool:
        """Whether this actor may see (and act on) what ``owner_id`` owns: their own, or anything as admin."""
        return self.is_admin or owner_id == self.actor_id

    def audit(
        self,
        action: str,
        *,
        resource_type: str,
        resource_id: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any],
        now: datetime,
    ) -> AuditEntry:
        """The audit row of ``action``, done by this actor, from where and under which request."""
        return AuditEntry(
            actor_id=self.actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            before_state=before,
            after_state=after,
            ip_address=self.ip_address,
            user_agent=self.user_agent,
            trace_id=self.trace_id,
            request_id=self.request_id,
            created_at=now,
        )


@dataclass(frozen=True, kw_only=True)
class CreatePayment:
    """Open a payment; the ids are derived from the caller's idempotency key, so a retry is harmless."""

    kind: Literal["create_payment"] = "create_payment"
    payment_id: str
    order_id: str
    user_id: str
    amount: Money
    customer: CustomerDetails
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    return_url: str | None = None
    #: Where the gateway sends webhooks for this order.
    notify_url: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    #: What the client's ``X-Device-Fingerprint`` header said (validated at the edge); fraud screening
    #: counts payments per device with it. The client's IP is ``actor.ip_address``.
    device_fingerprint: str | None = None
    actor: Actor


@dataclass(frozen=True, kw_only=True)
class VerifyPayment:
    """Ask the gateway what happened and settle our state from its answer."""

    kind: Literal["verify_payment"] = "verify_payment"
    payment_id: str | None = None
    order_id: str | None = None
    actor: Actor


#: A command as it travels on ``command.exchange`` (JSON; ``kind`` says which).
PaymentCommand = Annotated[CreatePayment | VerifyPayment, Field(discriminator="kind")]
# cast: mypy reads the Annotated union as a value, not a type (and its verdict differs between cached
# and fresh runs); pydantic reads it as intended.
PAYMENT_COMMANDS: TypeAdapter[CreatePayment | VerifyPayment] = TypeAdapter(cast(Any, PaymentCommand))

"""The emails we send, the messages that ask for them, and the ``emails`` record of each one.

One message on ``email.exchange`` asks for one kind of email, to one or more recipients. Each
(event, kind, recipient) is one ``EmailRecord``: its id is derived from the three, so a redelivered
message finds the record it made the first time, and a SENT record is never sent again.

    PENDING ──sent──> SENT (final)
      │  ↑ attempt_failed (retried later)
      └──gave_up──> FAILED ──sent──> SENT   (an operator re-drove the message from the DLQ)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final, Protocol

from pydantic import BaseModel, ConfigDict, Field

from payments.domain.errors import IllegalTransition, InvalidPayload


class EmailKind(StrEnum):
    """What an email is about; also the name of its templates (``email/<kind>.{subject,txt,html}``)."""

    PAYMENT_SUCCESS = "payment_success"  #: to the customer: paid, with the invoice attached
    PAYMENT_FAILED = "payment_failed"  #: to the customer: why it failed, and a link to try again
    PAYMENT_REFUND = "payment_refund"  #: to the customer: a refund's amount, status and ETA
    INVOICE_GENERATED = "invoice_generated"  #: to billing: a copy of every invoice issued
    ADMIN_ALERT = "admin_alert"  #: to the admins: what happened, since when, the numbers

    @property
    def template(self) -> str:
        return f"email/{self.value}"


#: The routing key (DESIGN §3) each kind of email is asked for with.
KIND_BY_ROUTING_KEY: Final[Mapping[str, EmailKind]] = {
    "email.payment.success": EmailKind.PAYMENT_SUCCESS,
    "email.payment.failed": EmailKind.PAYMENT_FAILED,
    "email.payment.refund": EmailKind.PAYMENT_REFUND,
    "email.invoice.generated": EmailKind.INVOICE_GENERATED,
    "email.admin.alert": EmailKind.ADMIN_ALERT,
}


class EmailRequest(BaseModel):
    """The fields the email agent reads from any ``email.*`` message; every other field is ignored.

    Which fields are set depends on the kind (``kind_of`` tells it): payment emails carry the payment
    id, refund emails the refund's snapshot, invoice emails the invoice id, alerts the ``Alert``
    message (``domain/alerts/model.py``).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    type: str | None = Field(default=None, max_length=64)
    event_id: str | None = Field(default=None, alias="eventId", max_length=200)
    occurred_at: datetime | None = Field(default=None, alias="occurredAt")
    payment_id: str | None = Field(default=None, alias="paymentId", max_length=128)
    # Failed payments: the gateway's reason (a code or its words)
    failure_reason: str | None = Field(default=None, alias="failureReason", max_length=500)
    # Refunds
    refund_id: str | None = Field(default=None, alias="refundId", max_length=128)
    amount: Decimal | None = None
    currency: str | None = Field(default=None, max_length=3)
    status: str | None = Field(default=None, max_length=32)
    speed: str | None = Field(default=None, max_length=32)
    status_description: str | None = Field(default=None, alias="statusDescription", max_length=500)
    # Invoices
    invoice_id: str | None = Field(default=None, alias="invoiceId", max_length=128)
    invoice_number: str | None = Field(default=None, alias="invoiceNumber", max_length=64)
    # Admin alerts
    alert_id: str | None = Field(default=None, alias="alertId", max_length=128)
    kind: str | None = Field(default=None, max_length=128)
    subject: str | None = Field(default=None, max_length=500)
    severity: str | None = Field(default=None, max_length=16)
    title: str | None = Field(default=None, max_length=500)
    details: dict[str, Any] = Field(default_factory=dict)
    since: datetime | None = None
    raised_at: datetime | None = Field(default=None, alias="raisedAt")
    source: str | None = Field(default=None, max_length=64)


def kind_of(request: EmailRequest, routing_key: str) -> EmailKind:
    """The kind of email a message asks for.

    The payload's ``type`` first (payment events and alerts name their routing key there), then the
    routing key, then the payload's shape: a message back from a retry tier carries its queue's name
    as routing key. ``InvalidPayload`` when nothing tells, or the fields the kind needs are missing.
    """
    kind = KIND_BY_ROUTING_KEY.get(request.type or "") or KIND_BY_ROUTING_KEY.get(routing_key)
    if kind is None:
        kind = _kind_by_shape(request)
    missing = [name for name in _REQUIRED[kind] if getattr(request, name) in (None, "")]
    if missing:
        raise InvalidPayload(f"a {kind.value} email needs {', '.join(missing)}", reason="invalid_payload")
    return kind


def _kind_by_shape(request: EmailRequest) -> EmailKind:
    if request.alert_id is not None and request.title is not None:
        return EmailKind.ADMIN_ALERT
    if request.refund_id is not None:
        return EmailKind.PAYMENT_REFUND
    if request.invoice_id is not None:
        # The billing copy names the amount; the customer's success email does not (it reads the payment).
        return EmailKind.INVOICE_GENERATED if request.amount is not None else EmailKind.PAYMENT_SUCCESS
    raise InvalidPayload(
        "not an email message: no type, routing key or shape we know", reason="unknown_email"
    )


#: The fields each kind cannot do without.
_REQUIRED: Final[Mapping[EmailKind, tuple[str, ...]]] = {
    EmailKind.PAYMENT_SUCCESS: ("payment_id", "invoice_id"),
    EmailKind.PAYMENT_FAILED: ("payment_id",),
    EmailKind.PAYMENT_REFUND: ("refund_id", "payment_id", "status"),
    EmailKind.INVOICE_GENERATED: ("payment_id", "invoice_id"),
    EmailKind.ADMIN_ALERT: ("alert_id", "title"),
}


class EmailStatus(StrEnum):
    PENDING = "PENDING"  #: recorded; not sent yet (or a try failed and the message waits to retry)
    SENT = "SENT"  #: the mail server took it; never sent again for this event
    FAILED = "FAILED"  #: given up: refused for good, or the retries ran out (the message is in the DLQ)


class EmailTrigger(StrEnum):
    ATTEMPT_FAILED = "attempt_failed"
    SENT = "sent"
    GAVE_UP = "gave_up"


EMAIL_TRANSITIONS: Final[Mapping[tuple[EmailStatus, EmailTrigger], EmailStatus]] = {
    (EmailStatus.PENDING, EmailTrigger.ATTEMPT_FAILED): EmailStatus.PENDING,
    (EmailStatus.PENDING, EmailTrigger.SENT): EmailStatus.SENT,
    (EmailStatus.PENDING, EmailTrigger.GAVE_UP): EmailStatus.FAILED,
    # A message re-driven from the DLQ tries a FAILED email again.
    (EmailStatus.FAILED, EmailTrigger.ATTEMPT_FAILED): EmailStatus.PENDING,
    (EmailStatus.FAILED, EmailTrigger.SENT): EmailStatus.SENT,
    (EmailStatus.FAILED, EmailTrigger.GAVE_UP): EmailStatus.FAILED,
}


def sources_of(trigger: EmailTrigger) -> frozenset[EmailStatus]:
    """The states ``trigger`` may leave (what the repository's guarded UPDATE names)."""
    return frozenset(state for state, known in EMAIL_TRANSITIONS if known is trigger)


def transition(status: EmailStatus, trigger: EmailTrigger) -> EmailStatus:
    try:
        return EMAIL_TRANSITIONS[(status, trigger)]
    except KeyError:
        raise IllegalTransition(f"email {status.value} cannot take {trigger.value}") from None


def email_id_for(event_id: str, kind: EmailKind, recipient_digest: str) -> str:
    """Stable per (event, kind, recipient); built from the recipient's keyed digest, never the address."""
    digest = hashlib.sha256(f"{event_id}|{kind.value}|{recipient_digest}".encode()).hexdigest()
    return f"eml_{digest[:32]}"


@dataclass(frozen=True, kw_only=True)
class EmailRecord:
    """One email to one recipient, as the ``emails`` table keeps it."""

    email_id: str
    #: The message that asked for it.
    event_id: str
    kind: EmailKind
    template: str
    #: Only for sending: stored encrypted, never logged (kept out of ``repr``).
    recipient: str = field(repr=False)
    subject: str
    status: EmailStatus = EmailStatus.PENDING
    #: Tries so far, failed or not.
    attempts: int = 0
    #: What the mail server answered when it took the message (its queue id), for tracing a delivery.
    provider_message_id: str | None = None
    #: The last failure, masked (no addresses).
    last_error: str | None = None
    created_at: datetime
    #: The last change (the last try).
    updated_at: datetime
    sent_at: datetime | None = None

    @classmethod
    def pending(
        cls,
        *,
        event_id: str,
        kind: EmailKind,
        recipient: str,
        recipient_digest: str,
        subject: str,
        now: datetime,
    ) -> EmailRecord:
        return cls(
            email_id=email_id_for(event_id, kind, recipient_digest),
            event_id=event_id,
            kind=kind,
            template=kind.template,
            recipient=recipient,
            subject=subject,
            created_at=now,
            updated_at=now,
        )


class EmailLog(Protocol):
    """The ``emails`` table: every email, its status and tries (``PgEmailLog`` is the real one).

    The updates are guarded like every state change: they name the states their trigger may leave.
    SENT is final, so an update that finds the email SENT changes nothing and returns False; an
    unknown ``email_id`` raises ``NotFound``.
    """

    async def begin(self, record: EmailRecord) -> EmailRecord:
        """Insert ``record`` (PENDING) unless its email exists; the stored one either way.

        A stored SENT email was sent already: the caller skips it.
        """
        ...

    async def attempt_failed(self, email_id: str, *, error: str, now: datetime) -> bool:
        """Count a failed try that will be retried (PENDING, attempts + 1, ``last_error``)."""
        ...

    async def sent(self, email_id: str, *, provider_message_id: str, now: datetime) -> bool:
        """The mail server took it: SENT, attempts + 1, its message id and ``sent_at``."""
        ...

    async def gave_up(self, email_id: str, *, error: str, now: datetime) -> bool:
        """The last try failed, or the server refused for good: FAILED, attempts + 1, ``last_error``."""
        ...

    async def for_event(self, event_id: str) -> Sequence[EmailRecord]:
        """The emails one message asked for, oldest first."""
        ...

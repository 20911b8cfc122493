"""An email ready to send, and the port that sends it (``bridges/smtp``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from payments.domain.errors import Reject


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  #: e.g. "application/pdf"
    content: bytes


@dataclass(frozen=True, kw_only=True)
class EmailMessage:
    """A rendered email: what the SMTP bridge turns into one MIME message (text and HTML alternatives)."""

    #: Deterministic per email (``<email_id@domain>``): a resend after a crash carries the same id,
    #: so receivers can recognise it.
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()
    #: Extra headers (e.g. ``X-CommDesk-Email-Kind``); never personal data.
    headers: tuple[tuple[str, str], ...] = field(default=())


class EmailRefused(Reject):
    """The mail server refused the message for good (a bad recipient, a message it will never take)."""

    code = "email_refused"


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` to the mail server; its answer (the queue id it gave) for the record.

        Raises ``DependencyUnavailable`` for what may pass (server down, 4xx, timeouts) and
        ``EmailRefused`` for what will not (5xx on every recipient).
        """
        ...

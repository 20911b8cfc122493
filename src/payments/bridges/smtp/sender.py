"""``SmtpSender``: the ``EmailSender`` port over SMTP, with aiosmtplib.

One connection per message. Our mail is a few messages per payment, so the handshake (and TLS) per
message costs little, and a fresh connection is never one the server has half-closed after its idle
timeout (RFC 5321 §4.5.3.2.7 lets it drop us after five idle minutes) or that an earlier timeout left
mid-command. Pooling can come when the benchmark shows the handshake matters.

What the server says decides what the runtime does with the email (DESIGN §3, STYLE §8):

- it could not be reached, timed out, dropped us, or answered 4xx → ``DependencyUnavailable`` (retry tiers);
- it answered 5xx to every recipient, or 5xx to the message itself (DATA) → ``EmailRefused`` (DLQ);
- it refused our credentials (535), would not STARTTLS when the URL requires it, or refused our sender
  address → ``DependencyUnavailable`` too. Retrying will not fix those quickly, but they are an
  operator's problem, not the message's: the email walks the retry tiers while the failure metric and
  alerts surface it, and goes out once the configuration is fixed instead of being dead-lettered.

Errors and log lines name the server (``host:port``) and the SMTP code, never the password, and any
address a server reply quotes is masked to ``***@domain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.utils
import logging
import re
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPDataError,
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponseException,
    SMTPSenderRefused,
)

from payments.bridges.smtp.url import SmtpUrl
from payments.domain.errors import DependencyUnavailable, PaymentsError
from payments.domain.notification.sending import EmailMessage, EmailRefused

logger = logging.getLogger(__name__)

#: Anything shaped like an address in a server's reply (servers often quote the recipient back).
_ADDRESS = re.compile(r"[^\s<>@\"']+@([^\s<>@\"']+)")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SmtpSender:
    """Sends each ``EmailMessage`` as one MIME message over its own SMTP connection."""

    def __init__(
        self,
        url: SmtpUrl,
        *,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``timeout`` bounds the connect and each SMTP command; ``tls_context`` replaces the default
        verifying context (tests pass one trusting their self-signed certificate)."""
        self._url = url
        self._timeout = timeout
        self._tls_context = tls_context
        #: Our EHLO name; looked up once (``socket.getfqdn`` may wait on DNS), not per connection.
        self._local_hostname = local_hostname
        self._clock = clock

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> SmtpSender:
        """A sender for ``SMTP_URL``; raises ``InvalidSmtpUrl`` (a ``ValueError``) when it does not parse."""
        return cls(
            SmtpUrl.parse(url), timeout=timeout, tls_context=tls_context, local_hostname=local_hostname
        )

    @property
    def url(self) -> SmtpUrl:
        return self._url

    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` to the server; its reply to the message (e.g. ``OK queued as …``)."""
        mime = to_mime(message, now=self._clock())
        envelope_from = email.utils.parseaddr(message.sender)[1] or message.sender
        client = await self._client()
        try:
            await client.connect()
            refused, reply = await client.send_message(
                mime, sender=envelope_from, recipients=list(message.recipients)
            )
        except (SMTPException, OSError, ValueError) as error:
            client.close()
            raise self._translate(error) from _cause(error)
        except BaseException:
            client.close()  # cancelled: hang up at once rather than wait on a polite QUIT
            raise
        await _quit_quietly(client)
        if refused:
            # Accepted for the others: sending again would repeat it to them, so this send stands.
            logger.warning(
                "the mail server refused %d of %d recipients (codes %s); the others got the message",
                len(refused),
                len(message.recipients),
                sorted({response.code for response in refused.values()}),
            )
        return reply.strip()

    async def _client(self) -> SMTP:
        if self._local_hostname is None:
            self._local_hostname = await asyncio.get_running_loop().run_in_executor(None, socket.getfqdn)
        url = self._url
        return SMTP(
            hostname=url.host,
            port=url.port,
            username=url.username,
            password=url.password,
            local_hostname=self._local_hostname,
            timeout=self._timeout,
            use_tls=url.implicit_tls,
            # None: STARTTLS when the server offers it; True: refuse a server that does not.
            start_tls=True if url.starttls_required else None,
            tls_context=self._tls_context,
            cert_bundle=url.ca_file if self._tls_context is None else None,
        )

    def _translate(self, error: Exception) -> PaymentsError:
        """The decision for the runtime, in words that name no password and no full address."""
        server = f"the mail server at {self._url.address}"
        if isinstance(error, SMTPRecipientsRefused):
            codes = sorted({refusal.code for refusal in error.recipients})
            detail = _mask(error.recipients[0].message) if error.recipients else ""
            text = f"{server} refused every recipient ({', '.join(map(str, codes))} {detail})"
            return EmailRefused(text) if all(code >= 500 for code in codes) else DependencyUnavailable(text)
        if isinstance(error, SMTPResponseException):
            return _answered(server, error)
        if isinstance(error, SMTPNotSupported):
            # Only raised for addresses that need SMTPUTF8 when the server lacks it: this message's fault.
            return EmailRefused(f"{server} cannot take this message: {error.message}")
        if isinstance(error, SMTPException | OSError):
            return DependencyUnavailable(f"{server} is unavailable: {_describe(error)}")
        # A ValueError from aiosmtplib's address check: an envelope address it cannot send.
        return EmailRefused("the message has an address that cannot be sent over SMTP")


def _answered(server: str, error: SMTPResponseException) -> PaymentsError:
    """A refusing reply: only a 5xx to the message itself is the message's fault."""
    if isinstance(error, SMTPAuthenticationError):
        return DependencyUnavailable(f"{server} refused our credentials ({error.code})")
    if isinstance(error, SMTPSenderRefused):
        return DependencyUnavailable(f"{server} refused our sender address ({_reply(error)})")
    if isinstance(error, SMTPDataError):
        text = f"{server} refused the message ({_reply(error)})"
        return EmailRefused(text) if error.code >= 500 else DependencyUnavailable(text)
    return DependencyUnavailable(f"{server} answered {_reply(error)}")


def to_mime(message: EmailMessage, *, now: datetime) -> email.message.EmailMessage:
    """``message`` as one MIME message: text and HTML alternatives, then the attachments.

    Raises ``EmailRefused`` when a header cannot be written (e.g. a line break inside it).
    """
    mime = email.message.EmailMessage()
    try:
        mime["Message-ID"] = message.message_id
        mime["Date"] = email.utils.format_datetime(now)
        mime["From"] = message.sender
        mime["To"] = ", ".join(message.recipients)
        mime["Subject"] = message.subject
        for name, value in message.headers:
            mime[name] = value
    except ValueError as error:
        raise EmailRefused(f"a header of the message cannot be written: {_mask(str(error))}") from None
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    for attachment in message.attachments:
        maintype, slash, subtype = attachment.content_type.partition("/")
        if not (maintype and slash and subtype):
            maintype, subtype = "application", "octet-stream"  # a type we cannot read: plain bytes
        mime.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return mime


async def _quit_quietly(client: SMTP) -> None:
    """Say goodbye; the message is accepted already, so a failed QUIT changes nothing about the send."""
    with contextlib.suppress(SMTPException, OSError):
        await client.quit()
    client.close()


def _cause(error: Exception) -> BaseException | None:
    # aiosmtplib's recipient and response errors carry the addresses they refused; chaining them
    # would print those in a traceback. Connection errors carry only the server's host and port.
    return None if isinstance(error, SMTPResponseException | SMTPRecipientsRefused) else error


def _reply(error: SMTPResponseException) -> str:
    return f"{error.code} {_mask(error.message)}".strip()


def _describe(error: BaseException) -> str:
    return _mask(str(error)) or type(error).__name__


def _mask(text: str) -> str:
    return _ADDRESS.sub(r"***@\1", text)

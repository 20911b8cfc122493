"""``SmtpSender``: the ``EmailSender`` port over SMTP, with aiosmtplib.

Connections are used again. The benchmark showed the handshake (connect, greeting, EHLO, STARTTLS and
AUTH where configured, QUIT) costing both us and the server more than the message itself, at two
emails per payment. A connection goes back for reuse only after a send it completed, so it is never
one an error or a timeout left mid-command; it is reused only within ``REUSE_WITHIN_SECONDS`` of its
last message, far inside the five idle minutes after which a server may drop a client (RFC 5321
§4.5.3.2.7). Should the server have hung up on an idle connection all the same (it closes it, or
answers 421), the message is sent once more on a fresh one at once: it was not taken. (A server that
took the message and hung up before saying so gets it twice, with the same ``Message-ID``: the
at-least-once the email agent already allows for a crash before ``sent`` commits.)

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
import email.policy
import email.utils
import logging
import re
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Final

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
#: An idle connection is used again only this soon after its last message (see the module docstring).
REUSE_WITHIN_SECONDS: Final = 30.0
#: Idle connections kept at most; a worker's email agent sends a few messages at once.
MAX_IDLE_CONNECTIONS: Final = 8
#: "Service not available, closing transmission channel": the server did not take the message.
_CLOSING: Final = 421


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _HeaderClassesMadeOnce(HeaderRegistry):
    """The standard header registry, except that each header's class is made once per name.

    ``HeaderRegistry`` builds a new class with ``type()`` for every header it parses, which was most of
    the CPU of building an email (a message sets a dozen headers and parameters). The class depends
    only on the header's name, so reusing it changes nothing in the message or its bytes.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = super().__getitem__(name)
        return made


#: ``email.policy.default`` (what ``EmailMessage()`` uses) with the registry above; pure data, no I/O.
MIME_POLICY: Final = email.policy.default.clone(header_factory=_HeaderClassesMadeOnce())


class SmtpSender:
    """Sends each ``EmailMessage`` as one MIME message, reusing idle connections (module docstring)."""

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
        #: Connections whose last send completed, with the loop time it completed; newest last.
        self._idle: list[tuple[SMTP, float]] = []

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

    @property
    def idle_connections(self) -> int:
        """Connections kept for the next messages."""
        return len(self._idle)

    async def send(self, message: EmailMessage) -> str:
        """Hand ``message`` to the server; its reply to the message (e.g. ``OK queued as …``)."""
        mime = to_mime(message, now=self._clock())
        envelope_from = email.utils.parseaddr(message.sender)[1] or message.sender
        recipients = list(message.recipients)
        idle = self._take_idle()
        if idle is not None:
            with contextlib.suppress(_DroppedWhileIdle):
                return await self._send_on(idle, mime, envelope_from, recipients, reused=True)
        return await self._send_on(await self._client(), mime, envelope_from, recipients, reused=False)

    async def close(self) -> None:
        """Say goodbye on every idle connection (at shutdown); the sender may still be used after."""
        idle, self._idle = self._idle, []
        # At once: a hung server then delays shutdown by one command timeout, not one per connection.
        await asyncio.gather(*(_quit_quietly(client) for client, _ in idle))

    async def _send_on(
        self,
        client: SMTP,
        mime: email.message.EmailMessage,
        envelope_from: str,
        recipients: list[str],
        *,
        reused: bool,
    ) -> str:
        try:
            if not reused:
                await client.connect()
            refused, reply = await client.send_message(mime, sender=envelope_from, recipients=recipients)
        except (SMTPException, OSError, ValueError) as error:
            client.close()
            if reused and _hung_up(error):
                raise _DroppedWhileIdle from error
            raise self._translate(error) from _cause(error)
        except BaseException:
            client.close()  # cancelled: hang up at once rather than wait on a polite QUIT
            raise
        await self._keep(client)
        if refused:
            # Accepted for the others: sending again would repeat it to them, so this send stands.
            logger.warning(
                "the mail server refused %d of %d recipients (codes %s); the others got the message",
                len(refused),
                len(recipients),
                sorted({response.code for response in refused.values()}),
            )
        return reply.strip()

    def _take_idle(self) -> SMTP | None:
        """The most recently used idle connection that is still open and fresh; stale ones are closed."""
        now = asyncio.get_running_loop().time()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < REUSE_WITHIN_SECONDS:
                return client
            # Not worth a QUIT: the server may have forgotten us already.
            client.close()
        return None

    async def _keep(self, client: SMTP) -> None:
        if len(self._idle) >= MAX_IDLE_CONNECTIONS:
            await _quit_quietly(client)
            return
        self._idle.append((client, asyncio.get_running_loop().time()))

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


class _DroppedWhileIdle(Exception):
    """A reused connection turned out closed by the server: it took nothing, send on a fresh one."""


def _hung_up(error: Exception) -> bool:
    closing = isinstance(error, SMTPResponseException) and error.code == _CLOSING
    return closing or isinstance(error, ConnectionError)


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
    mime = email.message.EmailMessage(policy=MIME_POLICY)
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

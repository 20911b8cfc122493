"""``SmtpSink``: a development and test SMTP server that keeps every message it accepts.

It runs inside the caller's event loop (``loop.create_server`` with aiosmtpd's ``SMTP`` protocol),
not in a thread as aiosmtpd's ``Controller`` does, so tests and ``payments demo`` start and stop it
like any other async resource and read what it received without locks.

Each accepted message is written to ``<directory>/<timestamp>-<n>.eml``: the bytes as received, after
two added headers, ``X-Envelope-From`` and ``X-Envelope-To``, naming the SMTP envelope (which may
differ from the From/To headers, e.g. for Bcc). Any mail client opens the files. The sink also keeps
each message in memory, parsed with ``email.policy.default``, and its reply names the file
(``250 OK queued as <timestamp>-<n>``), which is what ``SmtpSender`` returns as the provider id.

For tests it can fail on purpose: ``refuse_next(n, code)`` refuses the next ``n`` messages (at RCPT or
at DATA), ``refuse_all(code)`` refuses every message until ``recover()``. It can require AUTH
(``credentials``; PLAIN and LOGIN) and offer STARTTLS (``tls_context``) or speak TLS from the first
byte (``implicit_tls=True``), so the sender's TLS and login paths are tested against a real server.
"""

from __future__ import annotations

import asyncio
import email.policy
import hmac
import ipaddress
import logging
import ssl
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from payments.bridges.smtp.url import SmtpUrl

logger = logging.getLogger(__name__)

#: Where a refusal happens: at each recipient (RCPT) or after the message was sent (DATA).
Stage = Literal["RCPT", "DATA"]
#: The name the sink gives itself in its greeting and EHLO reply (never looked up in DNS).
SINK_HOSTNAME = "commdesk-smtp-sink"


@dataclass(frozen=True, kw_only=True)
class ReceivedMail:
    """One accepted message: its envelope, its bytes as received, and the same parsed."""

    queue_id: str  #: ``<timestamp>-<n>``: the file's name and the id in the sink's reply
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    path: Path | None  #: None when the sink keeps messages in memory only
    encrypted: bool  #: whether the message came over TLS (STARTTLS or implicit)
    authenticated: bool  #: whether the client logged in first


@dataclass
class _Refusal:
    code: int
    stage: Stage
    remaining: int | None  #: None: every message until ``recover()``

    def reply(self) -> str:
        if self.code < 500:
            return f"{self.code} 4.3.0 Try again later (the sink was told to refuse)"
        return f"{self.code} 5.7.1 Refused (the sink was told to refuse)"


class SmtpSink:
    """An SMTP server in this event loop that accepts, stores and remembers every message."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """``port=0`` takes any free port (read ``port`` after ``start``). With ``credentials``, a client
        must log in before MAIL. With ``tls_context`` the sink offers STARTTLS (and accepts AUTH only
        after it), or with ``implicit_tls`` speaks TLS from the first byte."""
        if implicit_tls and tls_context is None:
            raise ValueError("implicit_tls needs a tls_context")
        self.directory = directory
        self.host = host
        self._port = port
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self._server: asyncio.Server | None = None
        self._connections: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self._arrived = asyncio.Condition()
        self._refusal: _Refusal | None = None
        #: Messages (envelopes) already refused, and how: a message is refused once, counted once,
        #: and refused whole, whatever its number of recipients.
        self._charged: weakref.WeakKeyDictionary[Envelope, str] = weakref.WeakKeyDictionary()
        #: Every message accepted, in order of arrival.
        self.received: list[ReceivedMail] = []
        #: How many messages the sink refused on purpose.
        self.refused = 0
        self._sequence = 0

    @classmethod
    def for_url(
        cls, url: SmtpUrl, directory: Path | None, *, host: str | None = None, port: int | None = None
    ) -> SmtpSink:
        """A sink that ``url``'s sender can deliver to (logging in, if the URL has a user).

        It listens where ``url`` points unless ``host`` or ``port`` say otherwise (``0.0.0.0`` in a
        container). Raises ``ValueError`` for a URL the sink cannot stand in for: one pointing at another
        machine (when no ``host`` is given), or one asking for TLS, which needs a certificate the sender
        trusts.
        """
        if host is None and not _is_loopback(url.host):
            raise ValueError(f"SMTP_URL points at another machine ({url.address})")
        if url.implicit_tls or url.starttls_required:
            raise ValueError("SMTP_URL asks for TLS, which the development sink does not offer")
        credentials = None if url.username is None else (url.username, url.password or "")
        return cls(
            directory, host=host or url.host, port=url.port if port is None else port, credentials=credentials
        )

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The ``SMTP_URL`` that reaches this sink (without credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'smtps' if self._implicit_tls else 'smtp'}://{host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        loop = asyncio.get_running_loop()
        if self.directory is not None:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        self._server = await loop.create_server(
            lambda: self._protocol(loop),
            self.host,
            self._port,
            ssl=self._tls_context if self._implicit_tls else None,
        )

    async def stop(self) -> None:
        """Stop listening and hang up on every client still connected."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for connection in list(self._connections):
            if connection.transport is not None:
                connection.transport.close()
        await server.wait_closed()

    async def __aenter__(self) -> SmtpSink:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_for_messages(self, count: int, *, within: float = 10.0) -> list[EmailMessage]:
        """The messages once at least ``count`` have arrived; ``TimeoutError`` if not ``within`` seconds."""
        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)
        except TimeoutError:
            raise TimeoutError(f"{len(self.received)} of {count} messages arrived within {within}s") from None
        return self.messages

    def refuse_next(self, n: int = 1, code: int = 451, *, at: Stage = "RCPT") -> None:
        """Refuse the next ``n`` messages with ``code`` (4xx: try later; 5xx: never), then accept again."""
        self._refusal = _Refusal(code=_checked(code), stage=at, remaining=n)

    def refuse_all(self, code: int = 451, *, at: Stage = "RCPT") -> None:
        """Refuse every message with ``code`` until ``recover()``."""
        self._refusal = _Refusal(code=_checked(code), stage=at, remaining=None)

    def recover(self) -> None:
        """Accept messages again."""
        self._refusal = None

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> SMTP:
        protocol = SMTP(
            _Handler(self),
            hostname=SINK_HOSTNAME,
            ident="CommDesk SMTP sink",
            # STARTTLS on offer (not with implicit TLS: that connection is encrypted already).
            tls_context=None if self._implicit_tls else self._tls_context,
            # AUTH only once encrypted when STARTTLS can encrypt; aiosmtpd cannot see implicit TLS,
            # and a sink without TLS is a loopback convenience, so those offer AUTH at once.
            auth_require_tls=self._tls_context is not None and not self._implicit_tls,
            authenticator=self._authenticate if self._credentials is not None else None,
            loop=loop,
        )
        self._connections.add(protocol)
        return protocol

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self._credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self._credentials
        matches = hmac.compare_digest(auth_data.login, user.encode()) & hmac.compare_digest(
            auth_data.password, password.encode()
        )
        return AuthResult(success=matches, handled=False)

    def _refusal_at(self, stage: Stage, envelope: Envelope) -> str | None:
        """The reply refusing this message at ``stage``, if the sink was told to refuse it."""
        if envelope in self._charged:
            return self._charged[envelope]
        refusal = self._refusal
        if refusal is None or refusal.stage != stage:
            return None
        self._charged[envelope] = refusal.reply()
        self.refused += 1
        if refusal.remaining is not None:
            refusal.remaining -= 1
            if refusal.remaining <= 0:
                self._refusal = None
        return refusal.reply()

    async def _accept(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self._sequence += 1
        queue_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{self._sequence}"
        path = None if self.directory is None else self.directory / f"{queue_id}.eml"
        if path is not None:
            stamped = _envelope_headers(envelope) + raw
            try:
                await asyncio.to_thread(_write_new, path, stamped)
            except OSError as error:
                logger.error("the SMTP sink could not store a message: %s", error)
                return "451 4.3.0 Could not store the message; try again later"
        message = BytesParser(_class=EmailMessage, policy=email.policy.default).parsebytes(raw)
        mail = ReceivedMail(
            queue_id=queue_id,
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            message=message,
            path=path,
            encrypted=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
            authenticated=bool(session.authenticated),
        )
        async with self._arrived:
            self.received.append(mail)
            self._arrived.notify_all()
        logger.info("SMTP sink stored %s (%d bytes, %d recipients)", queue_id, len(raw), len(mail.rcpt_tos))
        return f"250 OK queued as {queue_id}"


class _Handler:
    """aiosmtpd's hooks (found by their ``handle_<VERB>`` names), answered by the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self._sink._credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if refused := self._sink._refusal_at("RCPT", envelope):
            return refused
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if refused := self._sink._refusal_at("DATA", envelope):
            return refused
        return await self._sink._accept(server, session, envelope)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked(code: int) -> int:
    if not 400 <= code < 600:
        raise ValueError(f"a refusal is a 4xx or 5xx reply, not {code}")
    return code


def _envelope_headers(envelope: Envelope) -> bytes:
    lines = f"X-Envelope-From: <{envelope.mail_from or ''}>\r\n"
    lines += f"X-Envelope-To: {', '.join(f'<{address}>' for address in envelope.rcpt_tos)}\r\n"
    return lines.encode()


def _write_new(path: Path, content: bytes) -> None:
    with path.open("xb") as file:  # "x": never overwrite another message
        file.write(content)

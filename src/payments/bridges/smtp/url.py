"""``SMTP_URL``: where mail goes, how the connection is secured, and who we log in as.

    smtp://[user:password@]host[:port][?starttls=required][&ca_file=/path/ca.pem]
    smtps://[user:password@]host[:port][?ca_file=/path/ca.pem]

``smtp://`` upgrades with STARTTLS whenever the server offers it and sends in the clear when it does
not (aiosmtplib's ``start_tls=None``), which suits a local sink; ``?starttls=required`` refuses a
server that does not offer it, for anything beyond this host. ``smtps://`` speaks TLS from the first
byte (RFC 8314 "implicit TLS"). Certificates are always verified, against the system's CAs or
``ca_file``. A user name and password are percent-decoded, so ``p%40ss`` is ``p@ss``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

#: Ports when the URL names none: SMTP's own, and submission over implicit TLS (RFC 8314).
DEFAULT_PORTS: Final = {"smtp": 25, "smtps": 465}
_STARTTLS_MODES: Final = {"auto": False, "required": True}


class InvalidSmtpUrl(ValueError):
    """``SMTP_URL`` does not parse; the message never repeats the URL (it may hold a password)."""


@dataclass(frozen=True, kw_only=True)
class SmtpUrl:
    host: str
    port: int
    #: ``smtps://``: TLS from the first byte; otherwise STARTTLS when offered (or required).
    implicit_tls: bool = False
    #: ``?starttls=required``: refuse to send over a connection the server will not encrypt.
    starttls_required: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: ``?ca_file=``: the CA bundle that signs the server's certificate (default: the system's).
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str) -> SmtpUrl:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise InvalidSmtpUrl("SMTP_URL is not a URL with a valid port") from None
        if parts.scheme not in DEFAULT_PORTS:
            raise InvalidSmtpUrl("SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise InvalidSmtpUrl("SMTP_URL names no host")
        if parts.path not in ("", "/") or parts.fragment:
            raise InvalidSmtpUrl("SMTP_URL takes no path or fragment")
        if (parts.username is None) != (parts.password is None):
            raise InvalidSmtpUrl("SMTP_URL needs both a user and a password, or neither")
        options = _options(parts.query)
        implicit_tls = parts.scheme == "smtps"
        if implicit_tls and "starttls" in options:
            raise InvalidSmtpUrl("smtps:// is TLS from the start; starttls= applies to smtp:// only")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            implicit_tls=implicit_tls,
            starttls_required=_STARTTLS_MODES[options.get("starttls", "auto")],
            username=None if parts.username is None else unquote(parts.username),
            password=None if parts.password is None else unquote(parts.password),
            ca_file=options.get("ca_file"),
        )

    @property
    def address(self) -> str:
        """``host:port`` (IPv6 hosts in brackets), for messages and logs."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def redacted(self) -> str:
        """The URL with its password replaced, safe to print."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"{scheme}://{user}{self.address}" + ("?starttls=required" if self.starttls_required else "")


def _options(query: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise InvalidSmtpUrl("SMTP_URL's query does not parse") from None
    options: dict[str, str] = {}
    for name, value in pairs:
        if name not in ("starttls", "ca_file"):
            raise InvalidSmtpUrl(f"SMTP_URL has an unknown option {name!r} (known: starttls, ca_file)")
        if name in options:
            raise InvalidSmtpUrl(f"SMTP_URL gives {name} twice")
        options[name] = value
    if options.get("starttls", "auto") not in _STARTTLS_MODES:
        raise InvalidSmtpUrl("SMTP_URL's starttls must be auto or required")
    if options.get("ca_file") == "":
        raise InvalidSmtpUrl("SMTP_URL's ca_file is empty")
    return options

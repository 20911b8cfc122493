"""For the SMTP tests: a self-signed certificate for 127.0.0.1, and a scripted SMTP server."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies the server against this certificate (and its name, 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert_file))


def self_signed_certificate(directory: Path) -> Certificate:
    """A fresh key and a certificate naming 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


#: What a scripted server answers when the script says nothing about a command.
_DEFAULT_REPLIES = {"EHLO": "250 scripted", "HELO": "250 scripted", "RCPT": "250 OK"}


@asynccontextmanager
async def scripted_smtp_server(
    rcpt: Callable[[str], str] = lambda line: "250 OK",
    data: str = "250 OK queued as scripted-1",
    *,
    mail: Callable[[int], str] = lambda earlier: "250 OK",
    connections: list[int] | None = None,
) -> AsyncIterator[int]:
    """A minimal SMTP server answering each RCPT with ``rcpt(line)`` and the message with ``data``.

    For replies aiosmtpd cannot be told to give, such as a refusal that quotes the address back.
    Each MAIL is answered with ``mail(messages earlier on this connection)``; after a 421 answer, or
    instead of an empty one, the server hangs up. Each connection appends its number to
    ``connections``. Yields its port.
    """
    handlers: set[asyncio.Task[None]] = set()

    async def converse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        if connections is not None:
            connections.append(len(connections) + 1)
        writer.write(b"220 scripted ESMTP\r\n")
        messages = 0
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb == "QUIT":
                writer.write(b"221 Bye\r\n")
                break
            if verb == "DATA":
                writer.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                while await reader.readline() not in (b".\r\n", b""):
                    pass
                reply, messages = data, messages + 1
            elif verb == "MAIL":
                reply = mail(messages)
                if not reply:
                    break  # hang up without a word
            else:
                reply = rcpt(line) if verb == "RCPT" else _DEFAULT_REPLIES.get(verb, "250 OK")
            writer.write(reply.encode() + b"\r\n")
            if reply.startswith("421"):
                break
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(converse, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*handlers, return_exceptions=True)

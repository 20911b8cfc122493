"""The one robust AMQP connection of a process, opened inside the running loop by the composition root.

aio-pika's robust connection reconnects on its own and restores the channels, exchanges, queues and
consumers declared through it; this module only adds the process's name (so the broker's connection
list shows which process is which) and turns a failed first connect into ``DependencyUnavailable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import aio_pika
from aio_pika.abc import AbstractRobustConnection
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from yarl import URL

from payments.domain.errors import DependencyUnavailable

#: What aio-pika and aiormq raise when the broker is unreachable, refuses us, or a channel or
#: connection is already gone (aiormq raises the builtin ConnectionError/TimeoutError for some of it).
BROKER_FAILURES: Final = (AMQPError, ChannelInvalidStateError, OSError, TimeoutError)

#: A broker that does not finish the handshake in this time is treated as down at start-up.
CONNECT_TIMEOUT_SECONDS: Final = 10.0


@asynccontextmanager
async def open_connection(url: str, *, name: str) -> AsyncIterator[AbstractRobustConnection]:
    """Connect to RabbitMQ as ``name`` (amqp:// or amqps://) and close the connection on exit.

    Raises ``DependencyUnavailable`` if the first connect fails; the message never contains the password.
    After that, the robust connection reconnects by itself.
    """
    try:
        connection = await aio_pika.connect_robust(
            url, client_properties={"connection_name": name}, timeout=CONNECT_TIMEOUT_SECONDS
        )
    except BROKER_FAILURES as error:
        # `from None`: the original exception is summarised in the message with the password removed;
        # chaining it would put its unredacted text into every logged traceback.
        raise DependencyUnavailable(
            f"RabbitMQ connection {name!r} to {redact_url(url)} failed: {describe_failure(error, url)}"
        ) from None
    try:
        yield connection
    finally:
        await connection.close()


def redact_url(url: str) -> str:
    """The URL with its password replaced, safe for logs and error messages."""
    try:
        parsed = URL(url)
    except ValueError:
        return "<unparseable URL>"
    if parsed.password:
        parsed = parsed.with_password("******")
    return str(parsed)


def describe_failure(error: BaseException, url: str) -> str:
    """``ErrorType: text`` of a broker failure, with the URL's password (if any) blanked out."""
    text = f"{type(error).__name__}: {error}"
    password = _password_of(url)
    return text.replace(password, "******") if password else text


def _password_of(url: str) -> str | None:
    try:
        return URL(url).password
    except ValueError:
        return None

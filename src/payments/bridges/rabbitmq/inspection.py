"""Read-only views of the broker for health checks, ``/health/queues`` and the queue-depth metric.

The management plugin is not assumed: depths come from passive ``queue.declare``, which answers with
the ready-message and consumer counts of an existing queue and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import ChannelNotFoundEntity

from payments.bridges.rabbitmq.connection import BROKER_FAILURES
from payments.domain.errors import DependencyUnavailable

#: A broker that takes longer than this to answer a probe counts as unavailable.
PROBE_TIMEOUT_SECONDS: Final = 5.0


@dataclass(frozen=True)
class QueueDepth:
    """One queue's ready messages (unacked ones are not counted) and consumers.

    A queue that does not exist is reported, not raised, so one missing queue does not hide the depths
    of the others: ``missing`` is True and both counts are 0.
    """

    name: str
    messages: int
    consumers: int
    missing: bool = False


async def queue_depths(
    connection: AbstractConnection,
    names: Sequence[str],
) -> list[QueueDepth]:
    """The depth of each queue in ``names``, in that order; a missing queue has ``missing=True``.

    Raises ``DependencyUnavailable`` if the broker cannot be asked (closed connection, no answer within
    ``PROBE_TIMEOUT_SECONDS``).
    """
    depths: list[QueueDepth] = []
    channel: AbstractChannel | None = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            for name in names:
                if channel is None:
                    channel = await _open_probe_channel(connection)
                depth = await _probe(channel, name)
                if depth.missing:
                    # The broker closes a channel on a passive declare of a missing queue.
                    await _close_quietly(channel)
                    channel = None
                depths.append(depth)
    except BROKER_FAILURES as error:
        raise DependencyUnavailable(f"cannot read RabbitMQ queue depths: {type(error).__name__}") from None
    finally:
        if channel is not None:
            await _close_quietly(channel)
    return depths


async def check_broker(connection: AbstractConnection) -> dict[str, Any]:
    """Health probe: open and close a channel; report the server and the round trip.

    Raises ``DependencyUnavailable`` when the connection is closed, reconnecting or does not answer
    within ``PROBE_TIMEOUT_SECONDS``.
    """
    if connection.is_closed:
        raise DependencyUnavailable("the RabbitMQ connection is closed")
    if not connection.connected.is_set():
        raise DependencyUnavailable("the RabbitMQ connection is down (reconnecting)")
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            channel = await _open_probe_channel(connection)
            await channel.close()
    except BROKER_FAILURES as error:
        raise DependencyUnavailable(f"RabbitMQ did not answer a probe: {type(error).__name__}") from None
    return {
        "status": "ok",
        **_server_identity(connection),
        "round_trip_seconds": round(time.perf_counter() - started, 6),
    }


async def _open_probe_channel(connection: AbstractConnection) -> AbstractChannel:
    if connection.is_closed:
        raise DependencyUnavailable("the RabbitMQ connection is closed")
    # A plain channel, not the robust one `connection.channel()` gives on a robust connection: a probe
    # channel the broker closes (missing queue) must stay closed, not be reopened and re-declared.
    channel = aio_pika.Channel(connection, publisher_confirms=False)
    await channel.initialize()
    return channel


async def _probe(channel: AbstractChannel, name: str) -> QueueDepth:
    try:
        queue = await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        return QueueDepth(name=name, messages=0, consumers=0, missing=True)
    result = queue.declaration_result
    return QueueDepth(name=name, messages=result.message_count or 0, consumers=result.consumer_count or 0)


async def _close_quietly(channel: AbstractChannel) -> None:
    # Closing is clean-up after the answer is known; a failure here changes nothing for the caller.
    with contextlib.suppress(*BROKER_FAILURES):
        await channel.close()


def _server_identity(connection: AbstractConnection) -> dict[str, str]:
    transport = connection.transport
    properties = transport.connection.server_properties if transport is not None else {}
    return {key: str(properties.get(key, "unknown")) for key in ("product", "version")}

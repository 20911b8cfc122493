"""Helpers shared by the RabbitMQ integration tests: unique names, broker snapshots, waiting for messages."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

from payments.pipeline.topology import QueueSpec
from tests.waiting import eventually


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def rabbitmqctl_json(*args: str) -> list[dict[str, Any]]:
    completed = subprocess.run(
        ["rabbitmqctl", "-q", *args, "--formatter", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows: list[dict[str, Any]] = json.loads(completed.stdout or "[]")
    return rows


async def spec_queues_deleted(channel: AbstractChannel, spec: QueueSpec) -> None:
    """Remove a test spec's work, retry and dead-letter queues (quorum queues need both flags off)."""
    for name in (spec.name, *spec.retry_queues, spec.dead_letter_queue):
        await channel.queue_delete(name, if_unused=False, if_empty=False)


async def get_one(queue: AbstractQueue) -> AbstractIncomingMessage:
    """The next message on ``queue`` (basic.get, manual ack), waiting up to the deadline for it."""
    found: list[AbstractIncomingMessage] = []

    async def arrived() -> bool:
        message = await queue.get(no_ack=False, fail=False)
        if message is not None:
            found.append(message)
        return bool(found)

    await eventually(arrived, what=f"a message on {queue.name}")
    return found[0]

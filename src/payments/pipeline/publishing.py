"""What the runtime and the outbox relay need from a message broker (``RabbitPublisher`` is the real one)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

HeaderValue = str | int | float | bool | None


class Publisher(Protocol):
    async def publish(
        self,
        *,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        headers: Mapping[str, HeaderValue] | None = None,
        content_type: str = "application/json",
        message_type: str | None = None,
        timestamp: datetime | None = None,
        expiration_seconds: float | None = None,
    ) -> None:
        """Publish a persistent message and return once the broker confirmed it.

        Raises ``DependencyUnavailable`` when the broker is unreachable or refuses the message.
        """
        ...

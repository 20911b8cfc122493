"""Commands that move money travel over ``command.exchange`` to an agent; the handler awaits the reply.

The reply says how the command ended, not what the payment looks like: the handler reads the payment
back from PostgreSQL (reads go to the database, DESIGN §7) and renders it itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CommandReply:
    """The agent's answer: the resource it acted on, or the error it ended with."""

    #: e.g. ``{"paymentId": "pay_..."}`` on success.
    result: Mapping[str, Any]
    #: ``{"code", "message", "status"}`` when the command failed; None on success.
    error: Mapping[str, Any] | None = None


class CommandBus(Protocol):
    async def request(
        self, routing_key: str, body: bytes, *, message_id: str, wait_seconds: float
    ) -> CommandReply | None:
        """Publish a command (with a broker confirm) and wait up to ``wait_seconds`` for its reply.

        None when no reply came in time (the command is queued and will still run: answer 202).
        Raises ``DependencyUnavailable`` when the command could not be queued at all (answer 503).
        """
        ...

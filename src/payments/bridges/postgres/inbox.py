"""The consumer inbox: which events each consumer has already handled (DESIGN §5.3)."""

from __future__ import annotations

from typing import Final

from payments.bridges.postgres.pool import Connection

#: Claim an event for a consumer; returns a row only the first time. A concurrent claim of the same
#: pair waits for ours to commit or roll back, so exactly one transaction ever gets True.
CLAIM_EVENT: Final = """
INSERT INTO inbox (consumer, event_id)
VALUES ($1, $2)
ON CONFLICT (consumer, event_id) DO NOTHING
RETURNING true
"""


class PgInbox:
    """The ``Inbox`` on PostgreSQL; claims commit or roll back with the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def claim(self, *, consumer: str, event_id: str) -> bool:
        """True the first time ``consumer`` claims ``event_id``; False if it was already handled."""
        claimed = await self._connection.fetchval(CLAIM_EVENT, consumer, event_id)
        return claimed is True

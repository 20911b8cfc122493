"""Which webhook deliveries are already on the queue, so a redelivery is answered without re-queueing.

Ingest takes a delivery's dedup key in two steps around the publish (DESIGN §5.1):

1. ``claim(key)``: True for the first delivery of the event; it marks the key *pending* for a short
   time only, so a process that dies between claim and publish cannot block Cashfree's retry.
2. After the broker confirmed the message, ``confirm(key)`` keeps the key for the long retention;
   if the publish failed, ``release(key)`` forgets it at once, so the retry is queued, not dropped.

The store is an optimisation, not the guarantee: the webhook agent's inbox makes a second copy of an
event harmless, so every doubt here resolves towards queueing again rather than dropping.
"""

from __future__ import annotations

from typing import Final, Protocol

#: How long a claimed key blocks redeliveries before its publish is confirmed. It must outlast the
#: publish (10 s by default) and stay well under Cashfree's first retry, two minutes after a failed
#: delivery (FACTS §7), so a crash mid-request never costs the retry.
PENDING_TTL_SECONDS: Final = 60.0


class WebhookDedup(Protocol):
    """The ``webhook:event:{dedup_key}`` marks (``RedisWebhookDedup``; ``InMemoryWebhookDedup`` in tests)."""

    async def claim(self, key: str) -> bool:
        """Mark ``key`` pending if nothing holds it; True if this caller got it (atomic).

        False means the key is pending (another delivery is being queued) or confirmed (already queued).
        Raises ``DependencyUnavailable`` when the store does not answer.
        """
        ...

    async def confirm(self, key: str) -> None:
        """The event is on the queue: keep ``key`` for the long retention.

        Only a key that is still held is kept; if its pending mark already expired, nothing is stored
        and a later redelivery is queued again (harmless, see the module docstring).
        """
        ...

    async def release(self, key: str) -> None:
        """The publish failed: forget ``key`` if it is still pending (a confirmed key is never removed)."""
        ...

"""Switchable faults: latency, random 5xx and 429 answers, a deterministic queue of answers, and
duplicate, reordered or withheld webhooks.

Random rates apply to every ``/pg`` call except Order Pay (``POST /orders/sessions``), which is the
customer's browser call rather than our server's, so a demo with faults on can still be paid. The
queue (``POST /_sandbox/faults/next``) applies to the next calls of any ``/pg`` route, Order Pay
included: each queued entry answers one call, in order. An entry with ``"apply": true`` lets the call
take effect first and then answers with the fault (the answer is lost, the change is made), as
Cashfree's sandbox does when Create Order answers 404 but created the order (FACTS §1).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Statuses the queue can answer with: rate limiting and the server-side failures of FACTS §8.
FaultStatus = Literal[429, 500, 502, 503, 504]


class FaultSettings(BaseModel):
    """The body of ``PUT /_sandbox/faults`` (keys left out take their defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Real milliseconds every ``/pg`` call waits before it is handled.
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    #: Share of calls (0 to 1) answered 500 ``api_error``.
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    #: Share of calls (0 to 1) answered 429 ``rate_limit_error``.
    rate_limit_rate: Annotated[float, Field(ge=0, le=1)] = 0.0
    #: ``x-ratelimit-retry`` of injected 429s.
    retry_after_seconds: Annotated[int, Field(ge=0, le=59)] = 1
    #: Send every new webhook twice (same body, same ``x-idempotency-key``).
    duplicate_webhooks: bool = False
    #: Send each batch of due webhooks newest first.
    reorder_webhooks: bool = False
    #: Hold new webhooks back until ``POST /_sandbox/webhooks/release``.
    withhold_webhooks: bool = False


class QueuedFault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: FaultStatus
    #: Handle the call first, then answer with the fault instead of its real answer.
    apply: bool = False


class NextFaults(BaseModel):
    """The body of ``POST /_sandbox/faults/next``: bare statuses or ``{"status", "apply"}`` objects."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[FaultStatus | QueuedFault]


#: The PG route the random rates spare (Order Pay).
SPARED_ROUTE: Final = "pay_order"


class FaultPlan:
    """The current fault settings and the queue of answers still to give."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.settings = FaultSettings()
        self.queue: deque[QueuedFault] = deque()
        self._rng = rng or random.Random()  # noqa: S311 - fault injection, not cryptography

    def reset(self) -> None:
        self.settings = FaultSettings()
        self.queue.clear()

    def add(self, request: NextFaults) -> None:
        for entry in request.statuses:
            self.queue.append(entry if isinstance(entry, QueuedFault) else QueuedFault(status=entry))

    def next_for(self, route: str) -> QueuedFault | None:
        """The fault this call meets, if any: the queue first, then the random rates."""
        if self.queue:
            return self.queue.popleft()
        if route == SPARED_ROUTE:
            return None
        draw = self._rng.random()
        if draw < self.settings.rate_limit_rate:
            return QueuedFault(status=429)
        if draw < self.settings.rate_limit_rate + self.settings.error_rate:
            return QueuedFault(status=500)
        return None

    def snapshot(self) -> dict[str, object]:
        """What ``GET /_sandbox/faults`` shows."""
        queued = [entry.model_dump() for entry in self.queue]
        return {**self.settings.model_dump(), "queued": queued}

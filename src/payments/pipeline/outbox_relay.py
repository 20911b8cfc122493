"""The outbox relay: publishes committed outbox events to RabbitMQ (DESIGN §5.2).

A state change and its events commit together in PostgreSQL; this relay then publishes each event
with a broker confirm and marks it published. Rows are claimed ``FOR UPDATE SKIP LOCKED``, so every
worker can run a relay without two of them publishing the same batch. An event whose publish was not
confirmed stays unpublished and goes out on a later pass; a crash after the confirm but before the
commit publishes it twice, which consumers absorb through their inbox (at-least-once, exactly-once
effects). The relay sleeps until PostgreSQL NOTIFYs it of new rows, polling as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from payments.domain.errors import DependencyUnavailable
from payments.pipeline.metrics import Metrics
from payments.pipeline.publishing import Publisher

logger = logging.getLogger(__name__)

#: Published rows are kept this long for investigation, then pruned.
RETAIN_PUBLISHED = timedelta(days=7)
_PRUNE_EVERY_SECONDS = 600.0
#: While events flow the relay runs a pass per commit that NOTIFYs it, a few events each; counting the
#: backlog after every pass was a query per pass. The gauges are scraped every 15 s, so once a second
#: is plenty (an idle relay still refreshes them on each poll).
_BACKLOG_EVERY_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0


class PendingEventLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def event_id(self) -> str: ...
    @property
    def exchange(self) -> str: ...
    @property
    def routing_key(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def occurred_at(self) -> datetime: ...


class ClaimedBatch(Protocol):
    @property
    def events(self) -> Sequence[PendingEventLike]: ...
    async def mark_published(self, ids: Sequence[int]) -> None: ...


class BacklogLike(Protocol):
    @property
    def count(self) -> int: ...
    @property
    def oldest_age_seconds(self) -> float: ...


class RelayStore(Protocol):
    """The relay's view of the outbox table (``PgOutboxRelayStore``)."""

    def claim_batch(self, limit: int) -> AbstractAsyncContextManager[ClaimedBatch]: ...
    async def backlog(self) -> BacklogLike: ...
    def notifications(self) -> AbstractAsyncContextManager[asyncio.Event]: ...
    async def prune_published(self, older_than: timedelta) -> int: ...


class OutboxRelay:
    def __init__(
        self,
        store: RelayStore,
        publisher: Publisher,
        *,
        batch_size: int,
        poll_seconds: float,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._metrics = metrics
        self._last_prune = 0.0
        self._last_backlog = -math.inf

    async def publish_pending(self) -> int:
        """Publish one batch; the number published. Raises DependencyUnavailable if any publish failed."""
        failure: BaseException | None = None
        async with self._store.claim_batch(self._batch_size) as batch:
            if not batch.events:
                return 0
            results = await asyncio.gather(
                *(self._publish(event) for event in batch.events), return_exceptions=True
            )
            published = [
                event.id for event, result in zip(batch.events, results, strict=True) if result is None
            ]
            failure = next((result for result in results if isinstance(result, BaseException)), None)
            if published:
                await batch.mark_published(published)
        self._metrics.outbox_published.inc(len(published))
        if failure is not None:
            raise DependencyUnavailable(f"outbox publish failed: {type(failure).__name__}") from failure
        return len(published)

    async def _publish(self, event: PendingEventLike) -> None:
        await self._publisher.publish(
            exchange=event.exchange,
            routing_key=event.routing_key,
            body=event.body,
            message_id=event.event_id,
            headers=dict(event.headers),
            message_type=event.routing_key,
            timestamp=event.occurred_at,
        )

    async def drain(self) -> int:
        """Publish until the outbox is empty (used on shutdown); the number published."""
        total = 0
        while (published := await self.publish_pending()) > 0:
            total += published
        await self._refresh_backlog()
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set, surviving database and broker outages."""
        backoff = 0.0
        while not stop.is_set():
            try:
                async with self._store.notifications() as wake:
                    backoff = 0.0
                    await self._relay_until_stopped(wake, stop)
            except Exception as error:
                backoff = min(_MAX_BACKOFF_SECONDS, max(0.5, backoff * 2))
                # An outage is expected and logged briefly; anything else is a bug worth a traceback.
                expected = isinstance(error, DependencyUnavailable)
                logger.warning("outbox relay paused for %.1fs: %s", backoff, error, exc_info=not expected)
                await self._refresh_backlog_if_possible()
                await _wait(stop, backoff)

    async def _relay_until_stopped(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()  # before the query: a NOTIFY during the batch wakes the next wait at once
            published = await self.publish_pending()
            await self._refresh_backlog_if_due()
            await self._prune_if_due()
            if published < self._batch_size:
                await _wait_any(wake, stop, self._poll_seconds)

    async def _refresh_backlog(self) -> None:
        backlog = await self._store.backlog()
        self._metrics.outbox_backlog.set(backlog.count)
        self._metrics.outbox_oldest_age.set(backlog.oldest_age_seconds)

    async def _refresh_backlog_if_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_backlog < _BACKLOG_EVERY_SECONDS:
            return
        self._last_backlog = now
        await self._refresh_backlog()

    async def _refresh_backlog_if_possible(self) -> None:
        """While the broker refuses, the backlog grows and ages: report it whenever the database answers,
        so the gauges (and the alert on the oldest event's age) show the outage instead of freezing."""
        try:
            await self._refresh_backlog()
        except Exception as error:
            logger.debug("outbox backlog not refreshed: %s", error)

    async def _prune_if_due(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        pruned = await self._store.prune_published(RETAIN_PUBLISHED)
        if pruned:
            logger.info("pruned %d published outbox events", pruned)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _wait_any(first: asyncio.Event, second: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

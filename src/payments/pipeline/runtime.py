"""Running agents: supervision, and where a failed message goes.

Each agent instance owns one consumer (its own channel and prefetch) and one ``Stream``. When the
agent's body raises, the supervisor takes the message the stream was holding, asks the retry policy
where it goes, re-publishes it there with a broker confirm, and only then acknowledges the original:
a crash between the two leaves a duplicate (which the inbox absorbs), never a loss. Then it restarts
the agent on the same stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from payments.domain.errors import DependencyUnavailable, Reject
from payments.pipeline.blueprint import AgentSpec
from payments.pipeline.context import AgentContext
from payments.pipeline.logging import mask_text
from payments.pipeline.metrics import Metrics
from payments.pipeline.publishing import HeaderValue, Publisher
from payments.pipeline.retry import Action, Decision, decide
from payments.pipeline.stream import FAILURES_HEADER, InboundMessage, MessageSource, Stream, failures_so_far
from payments.pipeline.topology import QueueSpec

logger = logging.getLogger(__name__)

FIRST_FAILURE_HEADER = "x-first-failure-at"
LAST_ERROR_HEADER = "x-last-error"
DEAD_LETTER_REASON_HEADER = "x-dead-letter-reason"
ORIGINAL_QUEUE_HEADER = "x-original-queue"

#: Headers the broker writes itself when it dead-letters or redelivers; we never copy them forward.
_BROKER_HEADERS = frozenset(
    {"x-death", "x-delivery-count", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"}
)
#: Longest pause between restarts of an agent that keeps failing outside any message.
_MAX_RESTART_DELAY = 30.0


class Consumer(MessageSource, Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...


ConsumerFactory = Callable[[str], Consumer]


class FailureRouter:
    """Moves a message whose handling failed to its retry tier or dead-letter queue."""

    def __init__(
        self, publisher: Publisher, *, queue: QueueSpec, agent: str, delay_scale: float, metrics: Metrics
    ) -> None:
        self._publisher = publisher
        self._queue = queue
        self._agent = agent
        self._delay_scale = delay_scale
        self._metrics = metrics

    async def route(self, message: InboundMessage, error: BaseException) -> Decision:
        """Re-publish ``message`` where the policy says, then acknowledge it.

        If the broker does not confirm, the message is handed back to its queue instead (the broker's
        delivery limit still bounds a message that can never be moved).
        """
        decision = decide(
            error, previous_failures=failures_so_far(message.headers), delay_scale=self._delay_scale
        )
        try:
            await self._republish(message, error, decision)
        except Exception as publish_error:
            # Whatever went wrong, the message must not be lost: hand it back to its queue.
            logger.error(
                "could not move a failed message; returning it to %s",
                self._queue.name,
                exc_info=not isinstance(publish_error, DependencyUnavailable),
            )
            await message.requeue()
            return decision
        await message.ack()
        self._count(decision)
        return decision

    async def _republish(self, message: InboundMessage, error: BaseException, decision: Decision) -> None:
        headers = _failure_headers(message.headers, error, decision.failures)
        if decision.action is Action.RETRY:
            assert decision.tier is not None
            target, expiration = self._queue.retry_queue(decision.tier), decision.delay_seconds
        else:
            headers[DEAD_LETTER_REASON_HEADER] = decision.reason
            headers[ORIGINAL_QUEUE_HEADER] = self._queue.name
            target, expiration = self._queue.dead_letter_queue, None
        await self._publisher.publish(
            exchange="",  # the default exchange routes straight to the queue named by the routing key
            routing_key=target,
            body=message.body,
            message_id=message.message_id or "",
            headers=headers,
            content_type=message.content_type or "application/octet-stream",
            message_type=message.message_type,
            timestamp=message.timestamp,
            expiration_seconds=expiration,
        )

    def _count(self, decision: Decision) -> None:
        if decision.action is Action.RETRY:
            assert decision.tier is not None
            self._metrics.retries.labels(self._queue.name, decision.tier.label).inc()
            self._metrics.agent_messages.labels(self._agent, "retried").inc()
        else:
            self._metrics.dead_letters.labels(self._queue.name, decision.reason).inc()
            self._metrics.agent_messages.labels(self._agent, "dead_lettered").inc()


def _failure_headers(
    original: Mapping[str, Any], error: BaseException, failures: int
) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {
        key: _header_value(value) for key, value in original.items() if key not in _BROKER_HEADERS
    }
    headers[FAILURES_HEADER] = failures
    headers.setdefault(FIRST_FAILURE_HEADER, datetime.now(UTC).isoformat())
    headers[LAST_ERROR_HEADER] = describe_error(error)
    return headers


def _header_value(value: Any) -> HeaderValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def describe_error(error: BaseException) -> str:
    """A short, masked description of an error, safe for message headers and logs."""
    return mask_text(f"{type(error).__name__}: {error}")[:300]


async def supervise_agent(
    spec: AgentSpec[Any],
    *,
    context: AgentContext,
    consumer: Consumer,
    router: FailureRouter,
    metrics: Metrics,
    stop: asyncio.Event,
) -> None:
    """Run one instance of an agent until ``stop`` is set, restarting it whenever it raises."""
    await consumer.start()
    stream: Stream[Any] = Stream(
        consumer, spec.value_type, agent=spec.name, metrics=metrics, stop=stop, on_invalid=router.route
    )
    restart_delay = 0.0
    try:
        while True:
            try:
                await spec.function(stream, context)
                await stream.finish_current()
            except Exception as error:
                restart_delay = await _handle_crash(spec, stream, router, error, restart_delay)
            else:
                if stop.is_set():
                    break
                logger.warning("agent %s returned before shutdown; restarting it", spec.name)
                restart_delay = _next_delay(restart_delay)
            if stop.is_set():
                break
            metrics.agent_restarts.labels(spec.name).inc()
            await _pause(stop, restart_delay)
    finally:
        await consumer.close()


async def _handle_crash(
    spec: AgentSpec[Any], stream: Stream[Any], router: FailureRouter, error: Exception, delay: float
) -> float:
    message = stream.release_current()
    if message is None:
        logger.exception("agent %s raised outside a message", spec.name)
        return _next_delay(delay)
    decision = await router.route(message, error)
    log = logger.warning if isinstance(error, Reject) or decision.action is Action.RETRY else logger.error
    log(
        "agent %s failed on message %s (failure %d): %s -> %s",
        spec.name,
        message.message_id,
        decision.failures,
        describe_error(error),
        decision.action.value,
        exc_info=not isinstance(error, Reject),
    )
    # A message failed, not the agent: restart at once, the message is already out of the way.
    return 0.0


def _next_delay(delay: float) -> float:
    return min(_MAX_RESTART_DELAY, max(0.1, delay * 2))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return

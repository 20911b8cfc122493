"""One sandbox's state and the glue between its parts: the clock, the ledger, the webhook outbox,
faults, rate limits and idempotency. Handlers and background loops reach it through ``SANDBOX_KEY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from aiohttp import web

from payments.bridges.cashfree.sandbox import payments, refunds
from payments.bridges.cashfree.sandbox.clock import SandboxClock
from payments.bridges.cashfree.sandbox.config import SandboxConfig
from payments.bridges.cashfree.sandbox.events import SandboxEvent
from payments.bridges.cashfree.sandbox.faults import FaultPlan
from payments.bridges.cashfree.sandbox.idempotency import IdempotencyStore
from payments.bridges.cashfree.sandbox.jsonbody import dumps
from payments.bridges.cashfree.sandbox.model import Ledger, TimerKind
from payments.bridges.cashfree.sandbox.orders import expire_if_due
from payments.bridges.cashfree.sandbox.ratelimit import RateLimiter
from payments.bridges.cashfree.sandbox.webhook_payloads import render, target_of
from payments.bridges.cashfree.sandbox.webhooks import OutgoingWebhook, WebhookOutbox

#: How often idempotency keys are swept (sandbox time); expired keys are ignored in between.
PURGE_EVERY: Final = timedelta(minutes=1)


@dataclass
class Sandbox:
    """Everything one running sandbox knows; mutated only on its event loop."""

    config: SandboxConfig
    clock: SandboxClock
    ledger: Ledger = field(default_factory=Ledger)
    faults: FaultPlan = field(default_factory=FaultPlan)
    idempotency: IdempotencyStore = field(default_factory=IdempotencyStore)
    limiter: RateLimiter = field(default_factory=RateLimiter)
    outbox: WebhookOutbox = field(init=False)
    _next_purge: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.outbox = WebhookOutbox(self.config.webhook_url)
        self._next_purge = self.clock.now() + PURGE_EVERY

    @classmethod
    def create(cls, config: SandboxConfig) -> Sandbox:
        limiter = RateLimiter(enforce=config.enforce_rate_limits)
        return cls(config=config, clock=SandboxClock(speed=config.clock_speed), limiter=limiter)

    def now(self) -> datetime:
        return self.clock.now()

    def publish(self, events: Iterable[SandboxEvent]) -> None:
        """Queue the webhook of each event, rendered for the configured payload version."""
        now = self.now()
        for event in events:
            body = render(event, self.config.webhook_version)
            order_id, notify_url = target_of(event)
            webhook = OutgoingWebhook(str(body["type"]), order_id, notify_url, dumps(body))
            self.outbox.enqueue(webhook, now, self.faults.settings)

    def run_due(self) -> None:
        """Everything the sandbox clock has made due: expiries, attempt outcomes, refund outcomes."""
        now = self.now()
        for timer in self.ledger.pop_due(now):
            self.publish(_TIMER_HANDLERS[timer.kind](self.ledger, timer.key, now))
        if now >= self._next_purge:
            self.idempotency.purge(now)
            self._next_purge = now + PURGE_EVERY


def _expire(ledger: Ledger, key: tuple[str, ...], now: datetime) -> list[SandboxEvent]:
    expire_if_due(ledger.orders[key[0]], now)
    return []


def _finish_attempt(ledger: Ledger, key: tuple[str, ...], now: datetime) -> list[SandboxEvent]:
    return payments.finish_planned(ledger, key[0], now)


def _finish_refund(ledger: Ledger, key: tuple[str, ...], now: datetime) -> list[SandboxEvent]:
    return refunds.finish_planned(ledger, key[0], key[1], now)


_TIMER_HANDLERS: Final[
    Mapping[TimerKind, Callable[[Ledger, tuple[str, ...], datetime], list[SandboxEvent]]]
] = {
    TimerKind.EXPIRE_ORDER: _expire,
    TimerKind.FINISH_ATTEMPT: _finish_attempt,
    TimerKind.FINISH_REFUND: _finish_refund,
}

#: The sandbox of an app (set on the root app; sub-apps read it through ``config_dict``).
SANDBOX_KEY: Final = web.AppKey("cashfree_sandbox", Sandbox)

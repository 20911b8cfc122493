"""The admin routes over the real app factory, with the in-memory dead letters and storage."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

from payments.domain.errors import NotFound
from payments.domain.unit_of_work import UnitOfWork
from payments.pipeline.settings import Settings
from payments.web.admin import admin_routes
from payments.web.auth import mint_token
from tests.contracts_dead_letters import runtime_headers
from tests.fakes.dead_letters import InMemoryDeadLetters, QueuedMessage
from tests.fakes.gateway import FixedClock
from tests.fakes.storage import InMemoryStore
from tests.unit._web_support import build_app

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ADMIN = "admin-1"
USER = "user-1"
WEBHOOKS = "webhooks.received"
EMAILS = "emails.outgoing"
USER_AGENT = "admin-console/2.0"


class StoredWebhooks:
    """Stands in for the webhook capability's reprocessing: known ids queue again, others are NotFound."""

    def __init__(self, known: dict[int, str]) -> None:
        self.known = known
        self.calls: list[int] = []

    async def __call__(self, webhook_id: int) -> str:
        self.calls.append(webhook_id)
        if webhook_id not in self.known:
            raise NotFound(f"no webhook {webhook_id}")
        return self.known[webhook_id]


class AdminWorld:
    def __init__(self) -> None:
        self.settings = Settings()
        self.store = InMemoryStore()
        self.dead_letters = InMemoryDeadLetters([WEBHOOKS, EMAILS])
        self.webhooks = StoredWebhooks({41: "cf_evt_41"})
        self.clock = FixedClock(NOW)
        #: Set to make every unit of work fail as it opens (the database is down).
        self.database_error: Exception | None = None

    def app(self) -> Any:
        routes = admin_routes(
            dead_letters=self.dead_letters,
            unit_of_work=self.unit_of_work,
            reprocess_webhook=self.webhooks,
            clock=self.clock,
        )
        return build_app(settings=self.settings, routes=routes)

    def unit_of_work(self) -> AbstractAsyncContextManager[UnitOfWork]:
        if self.database_error is not None:
            raise self.database_error
        return self.store.unit_of_work()

    def headers(self, user: str = ADMIN, *, admin: bool = True) -> dict[str, str]:
        token = mint_token(self.settings.security, user_id=user, admin=admin, now=datetime.now(UTC))
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}

    def dead(
        self, message_id: str, body: bytes = b'{"type": "PAYMENT_SUCCESS_WEBHOOK"}', queue: str = WEBHOOKS
    ):
        self.dead_letters.dead_letter(
            queue, QueuedMessage(message_id, body, runtime_headers(queue), "webhook.cashfree.received")
        )

    def audit(self) -> list[Any]:
        return [row.entry for row in self.store.audit_rows]

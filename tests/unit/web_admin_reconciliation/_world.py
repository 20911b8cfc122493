"""The reconciliation admin routes over the real app factory, service and in-memory storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from payments.domain.payment.service import PaymentService
from payments.domain.reconciliation.service import ReconciliationService
from payments.pipeline.settings import Settings
from payments.web.admin_reconciliation import admin_reconciliation_routes
from payments.web.auth import mint_token
from tests.fakes.gateway import FixedClock, InMemoryGateway, InMemoryPaymentLocks
from tests.fakes.storage import InMemoryStore
from tests.unit._web_support import build_app

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
ADMIN = "admin-1"
USER = "user-1"
USER_AGENT = "admin-console/2.0"


class ReconciliationWorld:
    def __init__(self) -> None:
        self.settings = Settings()
        self.store = InMemoryStore()
        self.clock = FixedClock(NOW)
        self.gateway = InMemoryGateway(now=NOW)
        self.service = ReconciliationService(
            unit_of_work=self.store.unit_of_work,
            gateway=self.gateway,
            payments=PaymentService(
                unit_of_work=self.store.unit_of_work,
                gateway=self.gateway,
                locks=InMemoryPaymentLocks(),
                clock=self.clock,
            ),
            clock=self.clock,
            settlement_sla=timedelta(hours=72),
            webhook_grace=timedelta(minutes=30),
        )

    def app(self) -> Any:
        routes = admin_reconciliation_routes(
            service=self.service, unit_of_work=self.store.unit_of_work, clock=self.clock
        )
        return build_app(settings=self.settings, routes=routes)

    def headers(self, user: str = ADMIN, *, admin: bool = True) -> dict[str, str]:
        token = mint_token(self.settings.security, user_id=user, admin=admin, now=datetime.now(UTC))
        return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}

    async def history(self) -> list[Any]:
        async with self.store.unit_of_work() as uow:
            return list(await uow.reconciliation.runs(50))

    def audit(self) -> list[Any]:
        return [row.entry for row in self.store.audit_rows]

"""The flood every chaos test runs: concurrent customers through the API and the sandbox, as real ones.

Each journey is one customer's payment, following a ``Plan``: created through the API, paid at the
sandbox with its test instruments (declined and paid UPI ids, sometimes declined first), verified or
left to the sandbox's webhooks, then refunded in rounds (partial and full refunds, refunds the
gateway cancels, ordinary refunds that finish later, and refunds over what is left, one after the
other or racing each other). Meanwhile the sandbox sends its webhooks twice and newest first (its own
faults), and ``Redelivery`` sends the tapped webhooks again.

Clients behave like real ones: a write is retried with its Idempotency-Key after 202, 409 or 503 (or
no answer at all) until it has a final answer. Every answer the API gave is kept (``Answer``), and a
journey fails at once on an answer no client should ever get (a 5xx other than 503, say).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import aiohttp

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.web.auth import mint_token
from tests.chaos.webhooks import APP_ID, SECRET, Redelivery, WebhookTap
from tests.service_processes import Service
from tests.waiting import eventually

SUCCEEDS: Final = "testsuccess@gocash"
FAILS: Final = "testfailure@gocash"
AMOUNT: Final = Decimal("499.00")
#: Refund reasons are the sandbox's refund_note: "SUCCESS" succeeds at once, "FAILED" is cancelled at
#: once, anything else succeeds 60 sandbox seconds later (bridges/cashfree/sandbox/refunds.py).
AT_ONCE, CANCELLED, LATER = "SUCCESS", "FAILED", "customer asked"
#: Answers after which a client sends the same request again, with the same key.
TRY_AGAIN: Final = frozenset({202, 409, 503})
#: How long one write may take to get a final answer, outages included; and one request to be answered
#: (a command's reply waits 5 s at most, COMMAND_REPLY_TIMEOUT_SECONDS in conftest.py).
WRITE_DEADLINE_SECONDS: Final = 60.0
REQUEST_TIMEOUT_SECONDS: Final = 15.0
#: A client's pause between two tries of one write.
RETRY_PAUSE_SECONDS: Final = 0.2


@dataclass(frozen=True)
class Plan:
    """One kind of customer journey."""

    name: str
    #: UPI ids paid with at the sandbox, in order.
    attempts: tuple[str, ...]
    #: Whether the client verifies (else the sandbox's webhooks alone settle the payment).
    verify: bool
    #: Rounds of refunds, (amount, reason) each; a round's refunds are sent at once.
    refunds: tuple[tuple[tuple[str, str], ...], ...] = ()


PLANS: Final = (
    Plan(
        "paid, refunded in part, then over-refunded",
        (SUCCEEDS,),
        verify=True,
        refunds=((("100.00", AT_ONCE),), (("450.00", AT_ONCE),)),
    ),
    Plan("declined", (FAILS,), verify=True),
    Plan(
        "declined, paid, refunded in full later, then over-refunded",
        (FAILS, SUCCEEDS),
        verify=True,
        refunds=((("499.00", LATER),), (("1.00", AT_ONCE),)),
    ),
    Plan("paid, settled by its webhook alone", (SUCCEEDS,), verify=False),
    Plan(
        "paid, two refunds racing for the balance",
        (SUCCEEDS,),
        verify=True,
        refunds=((("300.00", AT_ONCE), ("300.00", AT_ONCE)),),
    ),
    Plan(
        "paid, refund cancelled at the gateway, then refunded in full",
        (SUCCEEDS,),
        verify=True,
        refunds=((("200.00", CANCELLED),), (("499.00", AT_ONCE),)),
    ),
    Plan("declined twice, settled by webhooks alone", (FAILS, FAILS), verify=False),
)


@dataclass(frozen=True)
class Answer:
    """One answer of the API to one request (retries are answers of their own)."""

    journey: int
    path: str
    key: str
    status: int | None
    body: dict[str, Any]


@dataclass
class Journey:
    number: int
    plan: Plan
    user: str
    payment_id: str | None = None
    order_id: str | None = None
    #: The refunds the API accepted (201), and those it refused: (amount, error code).
    refunds: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    done: bool = False


class Flood:
    """Runs ``count`` journeys (``PLANS`` in turn), ``concurrency`` at a time, against ``service``."""

    def __init__(self, service: Service, tap: WebhookTap, *, count: int, concurrency: int) -> None:
        self.service = service
        self.tap = tap
        run = uuid.uuid4().hex[:6]
        self.journeys = [Journey(n, PLANS[n % len(PLANS)], f"chaos-{run}-{n}") for n in range(count)]
        self.answers: list[Answer] = []
        self._gate = asyncio.Semaphore(concurrency)
        self.redelivery: Redelivery | None = None

    @property
    def finished(self) -> int:
        return sum(journey.done for journey in self.journeys)

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[Flood]:
        """The clients' connections (the API, the sandbox, the redelivered webhooks), for the block."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        async with (
            aiohttp.ClientSession(self.service.web_url, timeout=timeout) as self._api,
            aiohttp.ClientSession() as webhooks,
            CashfreeClient(base_url=self.service.cashfree_url, app_id=APP_ID, secret_key=SECRET) as cf,
        ):
            self._cashfree = cf
            self.redelivery = Redelivery(self.tap, self.service.web_url, webhooks)
            # Cashfree itself sends some webhooks twice and out of order: so does the sandbox here.
            faults = {"duplicate_webhooks": True, "reorder_webhooks": True}
            async with webhooks.put(f"{self.service.sandbox_url}/_sandbox/faults", json=faults) as put:
                assert put.status == 200, await put.text()
            yield self

    async def run(self) -> None:
        """Every journey to its end, with the redelivery of tapped webhooks running alongside."""
        assert self.redelivery is not None, "run the flood inside connected()"
        stop = asyncio.Event()
        resending = asyncio.create_task(self.redelivery.run(stop))
        try:
            await asyncio.gather(*(self._journey(journey) for journey in self.journeys))
        finally:
            stop.set()
            await resending

    async def _journey(self, journey: Journey) -> None:
        async with self._gate:
            created = await self._write(journey, "/api/v1/payments/create", _create_body(), ok={201})
            journey.payment_id, journey.order_id = created["paymentId"], created["orderId"]
            for upi_id in journey.plan.attempts:
                await self._pay(created["paymentSessionId"], upi_id)
            if journey.plan.verify:
                await self._verified(journey)
            for round_ in journey.plan.refunds:
                await asyncio.gather(*(self._refund(journey, amount, reason) for amount, reason in round_))
            journey.done = True

    async def _verified(self, journey: Journey) -> None:
        """Verify (retried like every write): the answer is the sandbox's verdict on the order."""
        wanted = "SUCCESS" if SUCCEEDS in journey.plan.attempts else "FAILED"
        body = {"paymentId": journey.payment_id}
        answer = await self._write(journey, "/api/v1/payments/verify", body, ok={200})
        assert answer["status"] == wanted, f"journey {journey.number} ({journey.plan.name}): verify {answer}"

    async def _refund(self, journey: Journey, amount: str, reason: str) -> None:
        body = {"paymentId": journey.payment_id, "amount": amount, "reason": reason}
        answer = await self._write(journey, "/api/v1/refunds/initiate", body, ok={201, 400})
        if "refundId" in answer:
            journey.refunds.append(answer["refundId"])
        else:
            journey.refused.append((amount, answer["error"]["code"]))

    async def _pay(self, session_id: str, upi_id: str) -> None:
        """The customer pays at Cashfree; the sandbox is never what the chaos is about."""
        method = UpiPaymentMethod(upi=Upi(channel="collect", upi_id=upi_id))
        request = OrderPayRequest(payment_session_id=session_id, payment_method=method)
        await self._cashfree.pay_order(request, attempt_key=uuid.uuid4().hex)

    async def _write(self, journey: Journey, path: str, body: dict[str, Any], *, ok: set[int]) -> Any:
        """POST until the answer is final (one of ``ok``), with one Idempotency-Key throughout."""
        key = uuid.uuid4().hex
        token = mint_token(
            self.service.settings.security, user_id=journey.user, admin=False, now=datetime.now(UTC)
        )
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}

        async def attempt() -> Any:
            status, answer = await _post(self._api, path, body, headers)
            self.answers.append(Answer(journey.number, path, key, status, answer))
            if status in ok:
                return answer
            # Anything else is an answer no client may get, outage or not: an outage means "try again".
            assert status is None or status in TRY_AGAIN, self.service.failure(
                f"journey {journey.number} ({journey.plan.name}): POST {path} -> {status} {answer}"
            )
            return None

        what = f"journey {journey.number}: a final answer to POST {path}"
        return await eventually(
            attempt, timeout=WRITE_DEADLINE_SECONDS, interval=RETRY_PAUSE_SECONDS, what=what
        )


async def _post(
    api: aiohttp.ClientSession, path: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int | None, dict[str, Any]]:
    try:
        async with api.post(path, json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        return None, {}


def _create_body() -> dict[str, Any]:
    return {
        "amount": str(AMOUNT),
        "currency": "INR",
        "customer": {"name": "Asha Rao", "email": "asha@example.com", "phone": "9876543210"},
        "description": "CommDesk Pro",
    }

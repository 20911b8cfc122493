"""The demo's scripted traffic, sent the way real clients send it: the API with a JWT and an
Idempotency-Key, from the customer's own address (named by the proxy in front of the API), the
customer paying at the (sandbox) gateway with its test instruments.

Fraud screening runs on its default rules, so the day has several customers, each with an account,
details and address of their own, as a real day has: one customer paying ten times a minute is
exactly what the rules stop. The fraud tables in Redis (and the alerts' cooldown in PostgreSQL)
outlive a run, so each run brings new customers from addresses drawn afresh: running the demo again
does not add up to a burst of its own.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.pipeline.settings import Settings
from payments.web.auth import mint_token

SUCCEEDS, FAILS = "testsuccess@gocash", "testfailure@gocash"
#: Who pays during the day, in the order the scenario meets them.
CUSTOMER_NAMES: Final = ("Asha Rao", "Ravi Menon", "Meera Iyer", "Kabir Shah", "Divya Nair")
#: The customers' addresses: TEST-NET-3 (RFC 5737), reserved for documentation.
CUSTOMER_NETWORK: Final = "203.0.113"
#: Draws of addresses and phone numbers: nothing secret, but ``random`` trips the security lint (S311).
_draw = secrets.SystemRandom()


@dataclass(frozen=True)
class Customer:
    """Someone who pays: an account (user id, hence a JWT), their details and where they connect from."""

    user_id: str
    name: str
    email: str
    phone: str
    #: The client address the proxy in front of the API names (``X-Forwarded-For``).
    address: str

    def details(self) -> dict[str, str]:
        """The ``customer`` object of a create request."""
        return {"name": self.name, "email": self.email, "phone": self.phone}


def new_customer(name: str, *, user_id: str, address: str) -> Customer:
    """A customer with an email named after the account and a phone number of their own."""
    return Customer(
        user_id=user_id,
        name=name,
        email=f"{user_id}@example.com",
        phone=f"9{_draw.randrange(10**9):09d}",
        address=address,
    )


def the_days_customers() -> list[Customer]:
    """The customers of ``CUSTOMER_NAMES``, new for this run, each from an address of their own."""
    run = secrets.token_hex(3)
    hosts = _draw.sample(range(1, 255), len(CUSTOMER_NAMES))
    return [
        new_customer(name, user_id=f"{name.split()[0].lower()}-{run}", address=f"{CUSTOMER_NETWORK}.{host}")
        for name, host in zip(CUSTOMER_NAMES, hosts, strict=True)
    ]


@dataclass
class Outcome:
    """What the scenario saw; the demo passes only if every expectation held."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)
    #: Orders paid with Cashfree's webhooks delivered twice and out of order.
    webhook_orders: list[str] = field(default_factory=list)

    def expect(self, what: str, seen: object, wanted: object) -> None:
        mark = "ok " if seen == wanted else "BAD"
        self.lines.append(f"  [{mark}] {what}: {seen}")
        if seen != wanted:
            self.problems.append(f"{what}: expected {wanted}, saw {seen}")


class DemoClient:
    """One customer's calls to the API; ``gateway`` is where they pay (absent: they never pay)."""

    def __init__(
        self,
        settings: Settings,
        api: aiohttp.ClientSession,
        customer: Customer,
        *,
        gateway: CashfreeClient | None = None,
    ) -> None:
        token = mint_token(settings.security, user_id=customer.user_id, admin=False, now=datetime.now(UTC))
        # The demo is the proxy in front of the API (TRUSTED_PROXIES): it names the customer's address.
        self._auth = {"Authorization": f"Bearer {token}", "X-Forwarded-For": customer.address}
        self._api = api
        self._gateway = gateway
        self.customer = customer

    async def create(self, amount: str, *, key: str | None = None) -> tuple[int, dict[str, Any], bool]:
        body = {
            "amount": amount,
            "currency": "INR",
            "customer": self.customer.details(),
            "description": "CommDesk Pro, monthly",
        }
        headers = {**self._auth, "Idempotency-Key": key or uuid.uuid4().hex}
        async with self._api.post("/api/v1/payments/create", json=body, headers=headers) as response:
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            return response.status, await response.json(), replayed

    async def verify(self, payment_id: str) -> dict[str, Any]:
        headers = {**self._auth, "Idempotency-Key": uuid.uuid4().hex}
        async with self._api.post(
            "/api/v1/payments/verify", json={"paymentId": payment_id}, headers=headers
        ) as r:
            document: dict[str, Any] = await r.json()
            return document

    async def get(self, payment_id: str) -> dict[str, Any]:
        async with self._api.get(f"/api/v1/payments/{payment_id}", headers=self._auth) as response:
            document: dict[str, Any] = await response.json()
            return document

    async def refund(self, payment_id: str, amount: str) -> tuple[int, dict[str, Any]]:
        headers = {**self._auth, "Idempotency-Key": uuid.uuid4().hex}
        body = {"paymentId": payment_id, "amount": amount, "reason": "customer asked"}
        async with self._api.post("/api/v1/refunds/initiate", json=body, headers=headers) as response:
            return response.status, await response.json()

    async def get_refund(self, refund_id: str) -> dict[str, Any]:
        async with self._api.get(f"/api/v1/refunds/{refund_id}", headers=self._auth) as response:
            document: dict[str, Any] = await response.json()
            return document

    async def pay(self, payment: dict[str, Any], upi_id: str) -> None:
        if self._gateway is None:
            raise RuntimeError(f"{self.customer.name} does not pay in this scenario")
        request = OrderPayRequest(
            payment_session_id=payment["paymentSessionId"],
            payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id=upi_id)),
        )
        await self._gateway.pay_order(request, attempt_key=uuid.uuid4().hex)


async def run_payment_scenario(settings: Settings, base_url: str, customers: Sequence[Customer]) -> Outcome:
    """Five customers (``the_days_customers()``) pay: at once, after a declined attempt, not at all,
    by webhooks alone, and then ask for refunds; plus the mistakes clients make."""
    outcome = Outcome()
    cashfree = settings.cashfree
    async with (
        aiohttp.ClientSession(base_url) as api,
        CashfreeClient(
            base_url=cashfree.base_url,
            app_id=cashfree.app_id,
            secret_key=cashfree.secret_key.get_secret_value(),
        ) as gateway,
    ):
        asha, ravi, meera, kabir, divya = (
            DemoClient(settings, api, customer, gateway=gateway) for customer in customers
        )
        await _paid_at_once(asha, outcome)
        await _paid_after_a_decline(ravi, outcome)
        await _declined(meera, outcome)
        await _mistakes(asha, outcome)
        sandbox = f"http://{settings.sandbox.host}:{settings.sandbox.port}"
        await _paid_by_webhooks(kabir, outcome, sandbox=sandbox)
        await _refunds(divya, outcome, sandbox=sandbox)
    return outcome


async def _paid_at_once(client: DemoClient, outcome: Outcome) -> None:
    key = uuid.uuid4().hex
    status, payment, _ = await client.create("499.00", key=key)
    outcome.expect("create 499.00 INR", (status, payment.get("status")), (201, "PENDING"))
    outcome.payment_ids.append(payment.get("paymentId", ""))
    await client.pay(payment, SUCCEEDS)
    verified = await client.verify(payment["paymentId"])
    outcome.expect("pay with UPI, verify", verified.get("status"), "SUCCESS")
    status, again, replayed = await client.create("499.00", key=key)
    outcome.expect(
        "the same create again (same Idempotency-Key) is replayed", (status, replayed), (201, True)
    )
    outcome.expect("  ... and is the same payment", again.get("paymentId"), payment["paymentId"])


async def _paid_after_a_decline(client: DemoClient, outcome: Outcome) -> None:
    _, payment, _ = await client.create("1299.50")
    outcome.payment_ids.append(payment.get("paymentId", ""))
    await client.pay(payment, FAILS)
    failed = await client.verify(payment["paymentId"])
    outcome.expect(
        "a declined attempt leaves the payment FAILED (still payable)", failed.get("status"), "FAILED"
    )
    await client.pay(payment, SUCCEEDS)
    paid = await client.verify(payment["paymentId"])
    outcome.expect("a second attempt succeeds: FAILED -> SUCCESS", paid.get("status"), "SUCCESS")


async def _declined(client: DemoClient, outcome: Outcome) -> None:
    _, payment, _ = await client.create("89.00")
    outcome.payment_ids.append(payment.get("paymentId", ""))
    await client.pay(payment, FAILS)
    failed = await client.verify(payment["paymentId"])
    outcome.expect("a customer who gives up after a decline", failed.get("status"), "FAILED")


async def _mistakes(client: DemoClient, outcome: Outcome) -> None:
    status, body, _ = await client.create("10.001")
    outcome.expect(
        "an amount with 3 decimals is refused", (status, body["error"]["code"]), (400, "amount_precision")
    )
    status, body, _ = await client.create("0")
    outcome.expect("a zero amount is refused", (status, body["error"]["code"]), (400, "amount_invalid"))


async def _paid_by_webhooks(client: DemoClient, outcome: Outcome, *, sandbox: str) -> None:
    """Nobody calls verify: Cashfree's webhooks alone, sent twice and out of order, settle the payments."""
    async with aiohttp.ClientSession() as control:
        faults = {"duplicate_webhooks": True, "reorder_webhooks": True}
        async with control.put(f"{sandbox}/_sandbox/faults", json=faults) as response:
            response.raise_for_status()
        payments = []
        for upi_ids in ([FAILS, SUCCEEDS], [SUCCEEDS], [FAILS]):
            _, payment, _ = await client.create("250.00")
            for upi_id in upi_ids:
                await client.pay(payment, upi_id)
            payments.append((payment, "SUCCESS" if SUCCEEDS in upi_ids else "FAILED"))
        for payment, wanted in payments:
            outcome.payment_ids.append(payment["paymentId"])
            outcome.webhook_orders.append(payment["orderId"])
            seen = await _settled_by_webhook(client, payment["paymentId"], wanted)
            outcome.expect(
                f"webhooks only (duplicated, reordered): {payment['paymentId'][:12]}...", seen, wanted
            )
        async with control.delete(f"{sandbox}/_sandbox/faults") as response:
            response.raise_for_status()


async def _settled_by_webhook(client: DemoClient, payment_id: str, wanted: str) -> str:
    deadline = asyncio.get_running_loop().time() + 30
    status = ""
    while asyncio.get_running_loop().time() < deadline:
        status = str((await client.get(payment_id)).get("status"))
        if status == wanted:
            return status
        await asyncio.sleep(0.1)  # polling another process's progress, with a deadline
    return status


async def _paid_now(client: DemoClient, amount: str) -> dict[str, Any]:
    _, payment, _ = await client.create(amount)
    await client.pay(payment, SUCCEEDS)
    return await client.verify(payment["paymentId"])


async def _refunds(client: DemoClient, outcome: Outcome, *, sandbox: str) -> None:
    """A full refund, two partial ones and an over-refund the balance guard refuses."""
    full = await _paid_now(client, "499.00")
    partial = await _paid_now(client, "1000.00")
    outcome.payment_ids += [full["paymentId"], partial["paymentId"]]
    _, whole = await client.refund(full["paymentId"], "499.00")
    _, first = await client.refund(partial["paymentId"], "300.00")
    _, second = await client.refund(partial["paymentId"], "200.00")
    status, refused = await client.refund(partial["paymentId"], "600.00")
    outcome.expect(
        "an over-refund (600.00 of the 500.00 left)",
        (status, refused["error"]["code"]),
        (400, "refund_exceeds_balance"),
    )
    # Cashfree settles a refund days later; the sandbox does it when its clock moves on a minute.
    await _advance_sandbox_clock(sandbox, seconds=61)
    for label, refund in (("a full refund", whole), ("a partial refund", first), ("another partial", second)):
        seen = await _refund_settled(client, refund.get("refundId", ""))
        outcome.expect(f"{label} ({refund.get('amount')}) ends, by Cashfree's webhook", seen, "SUCCESS")
    outcome.expect(
        "  ... the fully refunded payment", (await client.get(full["paymentId"]))["status"], "REFUNDED"
    )
    outcome.expect(
        "  ... the partly refunded one",
        (await client.get(partial["paymentId"]))["status"],
        "PARTIALLY_REFUNDED",
    )


async def _refund_settled(client: DemoClient, refund_id: str) -> str:
    deadline = asyncio.get_running_loop().time() + 30
    status = ""
    while asyncio.get_running_loop().time() < deadline:
        status = str((await client.get_refund(refund_id)).get("status"))
        if status in {"SUCCESS", "FAILED"}:
            return status
        await asyncio.sleep(0.1)  # polling another process's progress, with a deadline
    return status


async def _advance_sandbox_clock(sandbox: str, *, seconds: float) -> None:
    async with (
        aiohttp.ClientSession() as control,
        control.post(f"{sandbox}/_sandbox/clock/advance", json={"seconds": seconds}) as response,
    ):
        response.raise_for_status()

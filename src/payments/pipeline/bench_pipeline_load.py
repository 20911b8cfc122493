"""The pipeline's load generator in ``payments bench``, a process of its own, one run per phase::

    python -m payments.pipeline.bench_pipeline_load create --api URL --cashfree URL \\
        --payments N [--concurrency 16] --key-prefix PREFIX      < {"tokens": [...], "app_id", "secret"}
    python -m payments.pipeline.bench_pipeline_load webhooks --url URL --key-prefix PREFIX \\
        [--rate R] [--concurrency 32]                            < {"secret": ..., "orders": [...]}

Secrets (bearer tokens, the Cashfree credentials, the webhook signing secret) and the order ids come
as one JSON line on stdin, never in argv (``ps`` shows argv to anyone). Each run prints one JSON line:

- ``create``: ``N`` payments through ``POST /api/v1/payments/create`` (each user's token in turn, a
  unique Idempotency-Key each), ``concurrency`` in flight, every answer timed; then, untimed, each
  created payment paid at the sandbox with its success test instrument, so that the gateway holds a
  successful attempt when the payment's webhook asks the worker to look. A ``CreateResult``.
- ``webhooks``: one signed PAYMENT_SUCCESS webhook per order, either as fast as ``concurrency``
  allows (no ``--rate``) or open loop at ``--rate`` per second: webhook ``i`` is sent at
  ``start + i / rate`` whether or not earlier ones were answered. The wall clock of each 200 is
  t0 of that payment's end-to-end latency. A ``WebhookLoad``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from payments.bridges.cashfree.client import CashfreeClient
from payments.bridges.cashfree.models import OrderPayRequest, Upi, UpiPaymentMethod
from payments.bridges.cashfree.signature import wall_clock_ms
from payments.pipeline.bench_load import REQUEST_TIMEOUT_SECONDS, payment_success_body, signed_headers
from payments.pipeline.bench_pipeline_report import CREATED, DELIVERED, CreateResult, WebhookLoad
from payments.pipeline.bench_stats import LatencySummary, ProcessUsage

#: The path of the create call (DESIGN §7).
CREATE_PATH: Final = "/api/v1/payments/create"
#: What every bench payment asks for; the webhook body names the same amount.
AMOUNT: Final = "1499.00"
#: The sandbox's UPI test instrument that succeeds at once (shared/cashfree/FACTS.md).
SUCCEEDING_UPI: Final = "testsuccess@gocash"


def open_loop_schedule(count: int, rate: float) -> list[float]:
    """Seconds after the start at which each of ``count`` sends is due, ``rate`` per second."""
    if rate <= 0:
        raise ValueError("an open-loop schedule needs a positive rate")
    return [index / rate for index in range(count)]


def create_body(index: int) -> dict[str, Any]:
    return {
        "amount": AMOUNT,
        "currency": "INR",
        "customer": {"name": "Asha Rao", "email": "asha.rao@example.com", "phone": "9876543210"},
        "description": f"CommDesk Pro (bench {index})",
    }


def own_usage(since: ProcessUsage | None = None) -> ProcessUsage:
    """This process's CPU (since ``since``, to leave out starting up) and its resident-set peak.

    ``getrusage`` of itself rather than ``/proc`` read by the bench: the process has exited by the
    time the bench has its result. ``ru_maxrss`` is in kB on Linux."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - (since.cpu_seconds if since else 0.0)
    return ProcessUsage(cpu_seconds=cpu, peak_rss_bytes=usage.ru_maxrss * 1024)


@dataclass
class _Tally:
    """Answers of one phase; coroutines share it (one event loop, so no locking)."""

    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Created:
    payment_id: str
    order_id: str
    session_id: str


async def _create_one(
    session: aiohttp.ClientSession, api: str, *, token: str, key: str, index: int, tally: _Tally
) -> _Created | None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    started = time.perf_counter()
    try:
        async with session.post(f"{api}{CREATE_PATH}", json=create_body(index), headers=headers) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        tally.failures[type(error).__name__] += 1
        return None
    tally.statuses[str(response.status)] += 1
    if response.status != int(CREATED):
        return None
    tally.latencies.append(time.perf_counter() - started)
    return _Created(body["paymentId"], body["orderId"], body["paymentSessionId"])


async def run_creates(
    arguments: argparse.Namespace, tokens: Sequence[str], cashfree: CashfreeClient
) -> tuple[CreateResult, list[str]]:
    """Create ``--payments`` payments, ``--concurrency`` in flight, then pay each at the sandbox; the
    result and the order ids of the payments paid."""
    baseline, tally, created = own_usage(), _Tally(), []
    indices: Iterator[int] = iter(range(arguments.payments))
    connector = aiohttp.TCPConnector(limit=arguments.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def work() -> None:
            for index in indices:
                key = f"{arguments.key_prefix}-{index}"
                token = tokens[index % len(tokens)]
                if made := await _create_one(
                    session, arguments.api, token=token, key=key, index=index, tally=tally
                ):
                    created.append(made)

        started = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(arguments.concurrency)))
        seconds = time.perf_counter() - started
    paid = await _pay_all(cashfree, created, arguments.concurrency)
    return CreateResult(
        requests=arguments.payments,
        seconds=seconds,
        statuses=dict(tally.statuses),
        failures=dict(tally.failures),
        latency_seconds=LatencySummary.of(tally.latencies),
        paid=len(paid),
        usage=own_usage(since=baseline),
    ), [payment.order_id for payment in paid]


async def _pay_all(cashfree: CashfreeClient, created: Sequence[_Created], concurrency: int) -> list[_Created]:
    pending: Iterator[_Created] = iter(created)
    paid: list[_Created] = []

    async def work() -> None:
        for payment in pending:
            request = OrderPayRequest(
                payment_session_id=payment.session_id,
                payment_method=UpiPaymentMethod(upi=Upi(channel="collect", upi_id=SUCCEEDING_UPI)),
            )
            await cashfree.pay_order(request, attempt_key=f"bench-{payment.payment_id}")
            paid.append(payment)

    await asyncio.gather(*(work() for _ in range(concurrency)))
    return paid


class _Webhooks:
    """Signs and sends one PAYMENT_SUCCESS webhook per order, noting when each was answered 200."""

    def __init__(self, session: aiohttp.ClientSession, arguments: argparse.Namespace, secret: str) -> None:
        self._session, self._url, self._secret = session, arguments.url, secret
        self._prefix = arguments.key_prefix
        self._sequence: Iterator[int] = itertools.count()
        self.tally = _Tally()
        self.answered_at: dict[str, float] = {}

    async def send(self, order_id: str) -> None:
        sequence = next(self._sequence)
        body = payment_success_body(
            sequence, key_prefix=self._prefix, at=datetime.now(UTC), order_id=order_id
        )
        key = f"{self._prefix}-{sequence}"
        headers = signed_headers(body, secret=self._secret, idempotency_key=key, now_ms=wall_clock_ms())
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            self.tally.failures[type(error).__name__] += 1
            return
        self.tally.statuses[str(response.status)] += 1
        if response.status == int(DELIVERED):
            self.answered_at[order_id] = time.time()


async def _as_fast_as_possible(sender: _Webhooks, orders: Sequence[str], concurrency: int) -> float:
    pending: Iterator[str] = iter(orders)

    async def work() -> None:
        for order_id in pending:
            await sender.send(order_id)

    await asyncio.gather(*(work() for _ in range(concurrency)))
    return 0.0


async def _on_schedule(sender: _Webhooks, orders: Sequence[str], rate: float) -> float:
    """Open loop: each send at its slot, however the earlier ones fare; the worst lag behind a slot."""
    loop = asyncio.get_running_loop()
    start, lags = loop.time(), [0.0]

    async def at(offset: float, order_id: str) -> None:
        # Sleeping is the schedule itself here, not a wait for another task's work.
        await asyncio.sleep(max(0.0, start + offset - loop.time()))
        lags.append(loop.time() - start - offset)
        await sender.send(order_id)

    schedule = open_loop_schedule(len(orders), rate)
    await asyncio.gather(*(at(offset, order) for offset, order in zip(schedule, orders, strict=True)))
    return max(lags)


async def run_webhooks(arguments: argparse.Namespace, secret: str, orders: Sequence[str]) -> WebhookLoad:
    baseline = own_usage()
    connector = aiohttp.TCPConnector(limit=arguments.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sender = _Webhooks(session, arguments, secret)
        started_at, started = time.time(), time.perf_counter()
        if arguments.rate:
            lag = await _on_schedule(sender, orders, arguments.rate)
        else:
            lag = await _as_fast_as_possible(sender, orders, arguments.concurrency)
        seconds = time.perf_counter() - started
    return WebhookLoad(
        started_at=started_at,
        seconds=seconds,
        statuses=dict(sender.tally.statuses),
        failures=dict(sender.tally.failures),
        answered_at=sender.answered_at,
        max_lag_seconds=lag,
        usage=own_usage(since=baseline),
    )


async def _create_command(arguments: argparse.Namespace, given: dict[str, Any]) -> str:
    async with CashfreeClient(
        base_url=arguments.cashfree, app_id=given["app_id"], secret_key=given["secret"]
    ) as cashfree:
        result, orders = await run_creates(arguments, given["tokens"], cashfree)
    return json.dumps({"result": result.model_dump(mode="json"), "orders": orders})


async def _webhooks_command(arguments: argparse.Namespace, given: dict[str, Any]) -> str:
    return (await run_webhooks(arguments, given["secret"], given["orders"])).model_dump_json()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m payments.pipeline.bench_pipeline_load",
        description="Drive the pipeline for payments bench; secrets and order ids come as JSON on stdin.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create payments through the API, then pay them")
    create.add_argument("--api", required=True, help="the web process's base URL")
    create.add_argument("--cashfree", required=True, help="the sandbox's PG base URL (.../pg)")
    create.add_argument("--payments", type=int, required=True)
    create.add_argument("--concurrency", type=int, default=16)
    create.add_argument("--key-prefix", required=True, help="starts every Idempotency-Key")
    create.set_defaults(run=_create_command)
    webhooks = commands.add_parser("webhooks", help="one PAYMENT_SUCCESS webhook per order")
    webhooks.add_argument("--url", required=True, help="where to POST the webhooks")
    webhooks.add_argument("--key-prefix", required=True, help="starts every x-idempotency-key")
    webhooks.add_argument("--rate", type=float, default=0.0, help="per second, open loop (0: at once)")
    webhooks.add_argument("--concurrency", type=int, default=32)
    webhooks.set_defaults(run=_webhooks_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    line = sys.stdin.readline().strip()
    if not line:
        print("bench_pipeline_load: the JSON input must be the first line of stdin", file=sys.stderr)
        return 2
    print(asyncio.run(arguments.run(arguments, json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

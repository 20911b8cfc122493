"""The load generator of ``payments bench``, run as its own process::

    python -m payments.pipeline.bench_load --url URL [--url URL2 ...] --key-prefix PREFIX \\
        [--concurrency 32] [--warmup 2] [--duration 10 | --requests N]  < secret

It runs apart from the servers it measures so that its own event loop and CPU never count as theirs.
The first line of stdin is the webhook signing secret (stdin, not argv: ``ps`` shows argv to anyone).
``concurrency`` workers send signed Cashfree PAYMENT_SUCCESS deliveries, each with a fresh
``x-idempotency-key``, back to back over keep-alive connections (worker ``i`` to URL ``i`` modulo their
number, so several server processes share the load evenly): first for the warm-up, whose answers
are only counted, then for the measured phase. It prints ``warm`` when the warm-up ends (the caller
starts its CPU readings there) and, at the end, one JSON line: a ``LoadReport``.

A worker starts no request after the phase ends but finishes the one in flight, so every 200 it saw
is a message on the queue, and the caller can check the queue's depth against ``accepted_total``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Final

import aiohttp

from payments.bridges.cashfree.signature import sign, wall_clock_ms
from payments.pipeline.bench_report import ACCEPTED, LoadReport
from payments.pipeline.bench_stats import LatencySummary

#: Cashfree writes event and payment times in India Standard Time.
_IST: Final = timezone(timedelta(hours=5, minutes=30))
#: The payload version the bench sends: the current one, which carries ``x-idempotency-key``.
PAYLOAD_VERSION: Final = "2025-01-01"
#: A request that takes longer than this is counted as a failure rather than waited for.
REQUEST_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class LoadPlan:
    """What to send, where, and for how long."""

    urls: tuple[str, ...]
    key_prefix: str
    concurrency: int = 32
    warmup_seconds: float = 2.0
    duration_seconds: float = 10.0
    #: When set, the measured phase ends after this many requests instead of after ``duration_seconds``.
    requests: int | None = None


def payment_success_body(
    sequence: int, *, key_prefix: str, at: datetime, order_id: str | None = None
) -> bytes:
    """A PAYMENT_SUCCESS_WEBHOOK body (payload 2025-01-01, about 1 KB) for ``order_id``, or for an
    order of its own that no payment has."""
    stamp = at.astimezone(_IST).isoformat(timespec="seconds")
    order_id = order_id or f"order_{key_prefix}_{sequence}"
    cf_payment_id = str(5_100_000_000 + sequence)
    payment = {
        "cf_payment_id": cf_payment_id,
        "payment_status": "SUCCESS",
        "payment_amount": 1499.0,
        "payment_currency": "INR",
        "payment_message": "Transaction Successful",
        "payment_time": stamp,
        "bank_reference": f"5{sequence:011d}",
        "auth_id": None,
        "payment_method": {
            "upi": {
                "channel": "collect",
                "upi_id": "asha.rao@okaxis",
                "upi_instrument": "UPI",
                "upi_payer_ifsc": "UTIB0000123",
                "upi_payer_account_number": "XXXXXX4321",
            }
        },
        "payment_group": "upi",
        "international_payment": {"international": False},
        "payment_surcharge": None,
    }
    data = {
        "order": {
            "order_id": order_id,
            "order_amount": 1499.0,
            "order_currency": "INR",
            "order_tags": {"plan": "commdesk-pro-annual", "workspace": "ws_7f3c2a91"},
        },
        "payment": payment,
        "customer_details": {
            "customer_name": "Asha Rao",
            "customer_id": "cust_7f3c2a91",
            "customer_email": "asha.rao@example.com",
            "customer_phone": "9876543210",
        },
        "error_details": None,
        "payment_gateway_details": {
            "gateway_name": "CASHFREE",
            "gateway_order_id": str(4_200_000_000 + sequence),
            "gateway_payment_id": cf_payment_id,
            "gateway_status_code": None,
            "gateway_settlement": "cashfree",
        },
        "payment_offers": None,
    }
    event = {"data": data, "event_time": stamp, "type": "PAYMENT_SUCCESS_WEBHOOK"}
    return json.dumps(event).encode("utf-8")


def signed_headers(body: bytes, *, secret: str, idempotency_key: str, now_ms: int) -> dict[str, str]:
    """The headers Cashfree sends with ``body``, signed at ``now_ms``."""
    timestamp = str(now_ms)
    return {
        "content-type": "application/json",
        "x-webhook-timestamp": timestamp,
        "x-webhook-signature": sign(secret, timestamp, body),
        "x-webhook-version": PAYLOAD_VERSION,
        "x-webhook-attempt": "1",
        "x-idempotency-key": idempotency_key,
    }


@dataclass
class _Tally:
    """One phase's counts; workers share it (one event loop, so no locking)."""

    deadline: float
    limit: int | None
    started: float = field(default_factory=time.perf_counter)
    issued: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def another(self) -> bool:
        """Whether a worker may start one more request (and count it as started)."""
        if time.perf_counter() >= self.deadline or (self.limit is not None and self.issued >= self.limit):
            return False
        self.issued += 1
        return True


class _Sender:
    """Builds and sends deliveries; the sequence runs across phases, so every key is new."""

    def __init__(self, session: aiohttp.ClientSession, plan: LoadPlan, secret: str) -> None:
        self._session, self._plan, self._secret = session, plan, secret
        self._sequence: Iterator[int] = itertools.count()

    async def work(self, tally: _Tally, url: str) -> None:
        while tally.another():
            sequence = next(self._sequence)
            body = payment_success_body(sequence, key_prefix=self._plan.key_prefix, at=datetime.now(UTC))
            headers = signed_headers(
                body,
                secret=self._secret,
                idempotency_key=f"{self._plan.key_prefix}-{sequence}",
                now_ms=wall_clock_ms(),
            )
            started = time.perf_counter()
            try:
                async with self._session.post(url, data=body, headers=headers) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                tally.failures[type(error).__name__] += 1
                continue
            tally.statuses[str(response.status)] += 1
            if response.status == 200:
                tally.latencies.append(time.perf_counter() - started)

    async def phase(self, *, seconds: float, limit: int | None) -> tuple[_Tally, float]:
        """Run every worker until the phase ends; the tally and the seconds from start to last answer."""
        tally = _Tally(deadline=time.perf_counter() + seconds, limit=limit)
        urls = self._plan.urls
        await asyncio.gather(*(self.work(tally, urls[n % len(urls)]) for n in range(self._plan.concurrency)))
        return tally, time.perf_counter() - tally.started


async def run_load(plan: LoadPlan, secret: str, *, on_warm: Callable[[], None]) -> LoadReport:
    """Warm up, call ``on_warm``, measure; the measured phase's report."""
    connector = aiohttp.TCPConnector(limit=plan.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sender = _Sender(session, plan, secret)
        warm, _ = await sender.phase(seconds=plan.warmup_seconds, limit=None)
        on_warm()
        measured_for = float("inf") if plan.requests is not None else plan.duration_seconds
        tally, seconds = await sender.phase(seconds=measured_for, limit=plan.requests)
    return LoadReport(
        requests=tally.issued,
        seconds=seconds,
        statuses=dict(tally.statuses),
        failures=dict(tally.failures),
        latency_seconds=LatencySummary.of(tally.latencies),
        accepted_total=warm.statuses[ACCEPTED] + tally.statuses[ACCEPTED],
        body_bytes=len(payment_success_body(0, key_prefix=plan.key_prefix, at=datetime.now(UTC))),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m payments.pipeline.bench_load",
        description="Send signed Cashfree webhooks as fast as possible; the secret is read from stdin.",
    )
    parser.add_argument(
        "--url", required=True, action="append", help="where to POST the deliveries (repeat to spread them)"
    )
    parser.add_argument("--key-prefix", required=True, help="starts every idempotency key and order id")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    parser.add_argument("--requests", type=int, help="measure this many requests instead of a duration")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    secret = sys.stdin.readline().strip()
    if not secret:
        print("bench_load: the signing secret must be the first line of stdin", file=sys.stderr)
        return 2
    plan = LoadPlan(
        urls=tuple(arguments.url),
        key_prefix=arguments.key_prefix,
        concurrency=arguments.concurrency,
        warmup_seconds=arguments.warmup,
        duration_seconds=arguments.duration,
        requests=arguments.requests,
    )
    report = asyncio.run(run_load(plan, secret, on_warm=_say_warm))
    print(report.model_dump_json(), flush=True)
    return 0


def _say_warm() -> None:
    print("warm", flush=True)


if __name__ == "__main__":
    sys.exit(main())

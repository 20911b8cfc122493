from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from io import StringIO
from typing import Any

import pytest

from payments.pipeline.logging import clear_secrets, configure_logging, log_context, register_secret
from payments.pipeline.tracing import TraceContext, use_trace

REQUIRED_FIELDS = {
    "requestId",
    "correlationId",
    "traceId",
    "userId",
    "paymentId",
    "orderId",
    "service",
    "module",
    "environment",
    "timestamp",
    "level",
    "logger",
    "message",
}

log = logging.getLogger("payments.tests.logging")

Lines = Callable[[], list[dict[str, Any]]]


def _configure(stream: StringIO, level: str = "DEBUG") -> None:
    configure_logging(level=level, service="payments-test", environment="test", stream=stream)


@pytest.fixture
def stream() -> Iterator[StringIO]:
    """Logging configured into a StringIO; the root logger is put back afterwards."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("aio_pika", "aiormq")}
    output = StringIO()
    _configure(output)
    yield output
    for handler in [h for h in root.handlers if h not in before]:
        root.removeHandler(handler)
    root.setLevel(level)
    for name, saved in quiet.items():
        logging.getLogger(name).setLevel(saved)
    clear_secrets()


@pytest.fixture
def lines(stream: StringIO) -> Lines:
    return lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_outside_a_trace_carries_the_required_fields(lines: Lines):
    log.info("started")

    [line] = lines()
    assert line.keys() >= REQUIRED_FIELDS
    assert line["message"] == "started"
    assert (line["level"], line["logger"], line["module"]) == ("INFO", log.name, log.name)
    assert (line["service"], line["environment"]) == ("payments-test", "test")
    assert [line[name] for name in ("requestId", "correlationId", "traceId", "userId")] == [None] * 4


def test_a_line_inside_a_trace_carries_its_ids(lines: Lines):
    trace = TraceContext.from_http_headers({"X-Request-Id": "req-1", "X-Correlation-Id": "corr-1"})

    with use_trace(trace):
        log.warning("inside")

    [line] = lines()
    assert line.keys() >= REQUIRED_FIELDS
    assert (line["requestId"], line["correlationId"], line["traceId"]) == ("req-1", "corr-1", trace.trace_id)


def test_the_timestamp_is_iso_8601_in_utc(lines: Lines):
    log.info("when")

    stamp = lines()[0]["timestamp"]
    assert stamp.endswith("Z")
    assert dt.datetime.fromisoformat(stamp).utcoffset() == dt.timedelta(0)


def test_log_context_blocks_nest_merge_and_restore(lines: Lines):
    with log_context(userId="u1"):
        with log_context(paymentId="p1", orderId="o1"):
            log.info("inner")
        log.info("outer")
    log.info("outside")

    inner, outer, outside = lines()
    assert (inner["userId"], inner["paymentId"], inner["orderId"]) == ("u1", "p1", "o1")
    assert (outer["userId"], outer["paymentId"], outer["orderId"]) == ("u1", None, None)
    assert outside["userId"] is None


def test_none_in_an_inner_log_context_hides_the_outer_field(lines: Lines):
    with log_context(userId="u1", paymentId="p1"), log_context(paymentId=None):
        log.info("hidden")

    [line] = lines()
    assert (line["userId"], line["paymentId"]) == ("u1", None)


def test_module_is_the_logger_name_unless_bound(lines: Lines):
    with log_context(module="agents.refunds"):
        log.info("bound")
    log.info("unbound")

    bound, unbound = lines()
    assert (bound["module"], unbound["module"]) == ("agents.refunds", log.name)


def test_extra_fields_appear_on_the_line(lines: Lines):
    log.info("paid", extra={"amount": "10.00", "attempt": 2})

    [line] = lines()
    assert (line["amount"], line["attempt"]) == ("10.00", 2)


async def test_log_context_does_not_leak_between_concurrent_tasks(lines: Lines):
    first_inside, second_inside = asyncio.Event(), asyncio.Event()

    async def handle(user: str, mine: asyncio.Event, other: asyncio.Event) -> None:
        with log_context(userId=user):
            mine.set()
            await other.wait()  # both blocks are open at once before either logs
            log.info("handled %s", user)

    await asyncio.gather(
        handle("u-first", first_inside, second_inside), handle("u-second", second_inside, first_inside)
    )

    ours = [line for line in lines() if line["logger"] == log.name]
    assert {line["message"]: line["userId"] for line in ours} == {
        "handled u-first": "u-first",
        "handled u-second": "u-second",
    }


def test_the_message_its_arguments_and_extra_fields_are_masked(stream: StringIO, lines: Lines):
    log.info(
        "user %s paid with %s",
        "asha@example.in",
        "4111111111111111",
        extra={"payload": {"password": "hunter2", "phone": "9876543210"}, "api_token": "tkn-123456"},
    )

    [line] = lines()
    assert line["message"] == "user a***@example.in paid with ************1111"
    assert line["payload"] == {"password": "***", "phone": "*******210"}
    assert line["api_token"] == "***"
    assert "hunter2" not in stream.getvalue()


def test_id_fields_are_not_mistaken_for_card_numbers(lines: Lines):
    with log_context(paymentId="5114910543012"):
        log.info("captured")

    assert lines()[0]["paymentId"] == "5114910543012"


def test_a_secret_never_appears_in_a_logged_exception(stream: StringIO, lines: Lines):
    register_secret("cashfree-secret-value-42")
    try:
        raise RuntimeError("login failed with cashfree-secret-value-42 via amqp://svc:mq-pass-9@rabbit/")
    except RuntimeError as error:
        log.exception("gateway call failed: %s", error)

    output = stream.getvalue()
    assert "cashfree-secret-value-42" not in output
    assert "mq-pass-9" not in output
    [line] = lines()
    assert "RuntimeError: login failed with *** via amqp://svc:***@rabbit/" in line["exc_info"]
    assert line["message"] == "gateway call failed: login failed with *** via amqp://svc:***@rabbit/"


def test_library_loggers_share_the_formatter_and_amqp_clients_are_quiet(lines: Lines):
    logging.getLogger("aiohttp.access").info("GET /health 200")
    logging.getLogger("asyncpg").info("pool ready")
    logging.getLogger("aio_pika.connection").info("channel opened")
    logging.getLogger("aiormq").warning("connection lost")

    assert [(line["logger"], line["message"]) for line in lines()] == [
        ("aiohttp.access", "GET /health 200"),
        ("asyncpg", "pool ready"),
        ("aiormq", "connection lost"),
    ]


def test_the_level_setting_drops_quieter_lines(stream: StringIO, lines: Lines):
    _configure(stream, level="warning")

    log.info("dropped")
    log.error("kept")

    assert [line["message"] for line in lines()] == ["kept"]


def test_configuring_again_replaces_the_previous_handler(stream: StringIO):
    second = StringIO()
    _configure(second)

    log.info("once")

    assert stream.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["once"]

"""Reading a dead letter's headers, and the headers a re-driven message goes out with."""

from __future__ import annotations

from datetime import UTC, datetime

from payments.domain import dead_letters
from payments.domain.dead_letters import DeadLetteredBy, header_text, read_dead_letter, redrive_headers
from payments.pipeline import runtime, stream

NOW = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)


def test_the_history_header_names_are_the_ones_the_runtime_writes():
    assert dead_letters.FAILURES_HEADER == stream.FAILURES_HEADER
    assert dead_letters.FIRST_FAILURE_HEADER == runtime.FIRST_FAILURE_HEADER
    assert dead_letters.LAST_ERROR_HEADER == runtime.LAST_ERROR_HEADER
    assert dead_letters.DEAD_LETTER_REASON_HEADER == runtime.DEAD_LETTER_REASON_HEADER
    assert dead_letters.ORIGINAL_QUEUE_HEADER == runtime.ORIGINAL_QUEUE_HEADER
    assert runtime._BROKER_HEADERS <= dead_letters.BROKER_HEADERS


def broker_dead_letter_headers() -> dict:
    # As RabbitMQ writes them for a message that waited in a retry tier, then crash-looped: x-death is
    # newest first, and x-first-death-reason remembers the tier's expiry, not the delivery limit.
    return {
        "x-retry-count": 1,
        "x-first-failure-at": "2026-11-26T10:00:00+00:00",
        "x-last-error": "RuntimeError: boom",
        "x-death": [
            {
                "queue": "q",
                "reason": "delivery_limit",
                "count": 1,
                "exchange": "",
                "routing-keys": ["q"],
                "time": datetime(2026, 11, 26, 10, 5),
            },
            {
                "queue": "q.retry.30s",
                "reason": "expired",
                "count": 1,
                "exchange": "",
                "routing-keys": [b"q.retry.30s"],
                "time": datetime(2026, 11, 26, 10, 1),
            },
        ],
        "x-first-death-reason": b"expired",
        "x-first-death-queue": "q.retry.30s",
        "x-delivery-count": 21,
    }


def test_a_message_the_broker_dead_lettered_reads_as_the_brokers_with_the_latest_reason():
    letter = read_dead_letter(
        queue="q",
        message_id="m1",
        routing_key="q.dlq",
        message_type=None,
        body=b"{}",
        headers=broker_dead_letter_headers(),
    )

    assert letter.dead_lettered_by is DeadLetteredBy.BROKER
    assert letter.reason == "delivery_limit"
    assert letter.failures == 1
    assert letter.last_error == "RuntimeError: boom"
    assert letter.routing_key == "q.retry.30s", "the oldest x-death keeps the earliest routing key"
    assert letter.headers["x-first-death-reason"] == "expired"
    assert '"reason": "delivery_limit"' in letter.headers["x-death"]


def test_a_broker_dead_letter_without_runtime_history_dates_its_failure_by_the_latest_death():
    headers = broker_dead_letter_headers()
    del headers["x-first-failure-at"], headers["x-retry-count"]

    letter = read_dead_letter(
        queue="q", message_id="m1", routing_key="q.dlq", message_type=None, body=b"", headers=headers
    )

    assert letter.failures == 0
    assert letter.first_failed_at == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


def test_a_message_without_an_id_or_history_reads_as_the_runtimes_with_nothing_known():
    letter = read_dead_letter(
        queue="q", message_id="", routing_key="q.dlq", message_type=None, body=b"x", headers={}
    )

    assert letter.message_id is None
    assert letter.routing_key == "q.dlq"
    assert (letter.failures, letter.first_failed_at, letter.last_error, letter.reason) == (
        0,
        None,
        None,
        None,
    )
    assert letter.dead_lettered_by is DeadLetteredBy.RUNTIME


def test_odd_history_values_are_read_without_failing():
    letter = read_dead_letter(
        queue="q",
        message_id="m",
        routing_key="q.dlq",
        message_type=None,
        body=b"",
        headers={"x-retry-count": b"3", "x-first-failure-at": "yesterday", "x-dead-letter-reason": True},
    )

    assert (letter.failures, letter.first_failed_at, letter.reason) == (3, None, None)


def test_redrive_headers_drop_the_history_keep_the_rest_and_count_the_redrive():
    headers = {
        **broker_dead_letter_headers(),
        "x-dead-letter-reason": "exhausted",
        "x-original-queue": "q",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-webhook-version": b"2025-01-01",
        "x-redrive-count": 2,
    }

    out = redrive_headers(headers, now=NOW)

    assert out == {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-webhook-version": "2025-01-01",
        "x-redrive-count": 3,
        "x-redriven-at": "2026-11-26T10:30:00+00:00",
    }


def test_header_text_renders_tables_as_json_and_bytes_as_text():
    assert header_text(b"abc") == "abc"
    assert header_text(7) == "7"
    assert header_text({"b": [1, b"x"], "a": datetime(2026, 1, 1)}) == (
        '{"a": "2026-01-01T00:00:00+00:00", "b": [1, "x"]}'
    )

"""The queue arguments of DESIGN §3, built without a broker."""

from __future__ import annotations

import pytest

from payments.bridges.rabbitmq.topology import (
    dead_letter_queue_arguments,
    event_log_arguments,
    retry_queue_arguments,
    work_queue_arguments,
)
from payments.pipeline.topology import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    EVENT_LOG_MAX_AGE,
    EVENT_LOG_MAX_BYTES,
    RETRY_TIERS,
    QueueSpec,
    RetryTier,
)

SPEC = QueueSpec("orders.test")


def test_a_work_queue_is_a_quorum_queue_that_dead_letters_to_its_dlq_after_the_delivery_limit() -> None:
    assert work_queue_arguments(SPEC) == {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": "orders.test.dlq",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


@pytest.mark.parametrize("tier", RETRY_TIERS, ids=lambda tier: tier.label)
def test_a_retry_queue_holds_a_message_for_its_delay_then_returns_it_to_the_work_queue(
    tier: RetryTier,
) -> None:
    assert retry_queue_arguments(SPEC, tier) == {
        "x-queue-type": "quorum",
        "x-message-ttl": int(tier.delay_seconds * 1000),
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "orders.test",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def test_retry_tier_ttls_are_whole_milliseconds_even_for_fractional_delays() -> None:
    arguments = retry_queue_arguments(SPEC, RetryTier("fast", 0.0015))

    assert arguments["x-message-ttl"] == 2
    assert isinstance(arguments["x-message-ttl"], int)


def test_a_dead_letter_queue_is_a_plain_quorum_queue_without_expiry() -> None:
    assert dead_letter_queue_arguments() == {"x-queue-type": "quorum"}


def test_the_event_log_is_a_stream_with_age_and_size_retention() -> None:
    assert event_log_arguments() == {
        "x-queue-type": "stream",
        "x-max-age": EVENT_LOG_MAX_AGE,
        "x-max-length-bytes": EVENT_LOG_MAX_BYTES,
    }


def test_each_call_builds_a_fresh_dict_so_callers_cannot_change_the_next_declaration() -> None:
    first = work_queue_arguments(SPEC)
    first["x-delivery-limit"] = 1

    assert work_queue_arguments(SPEC)["x-delivery-limit"] == DELIVERY_LIMIT

"""De-duplication keys: the same for every redelivery of an event, different across events and families."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from payments.bridges.cashfree.webhooks import MAX_DEDUP_KEY_LENGTH, parse_webhook

from . import _samples
from ._shared import read_body, variant

PAYMENT_SUCCESS = read_body("payment_success.body")
REFUND_SUCCESS = read_body("refund_success.body")
LAGO_LINK_EVENT = read_body("lago_payment_link_event.body")

#: What may appear in a key: percent-encoded parts separated by ":".
REDIS_SAFE = re.compile(r"[A-Za-z0-9_.~%:-]+")


def key_of(body: bytes, headers: dict[str, str] | None = None) -> str:
    return parse_webhook(body, headers or {}).dedup_key


def test_the_idempotency_key_header_wins_over_the_payload():
    key = key_of(PAYMENT_SUCCESS, {"x-idempotency-key": "bWpZQ2xQb3JzZ2VO"})

    assert key == "cashfree:idem:bWpZQ2xQb3JzZ2VO"
    assert key_of(REFUND_SUCCESS, {"x-idempotency-key": "bWpZQ2xQb3JzZ2VO"}) == key


def test_the_header_is_found_whatever_its_case():
    assert key_of(PAYMENT_SUCCESS, {"X-Idempotency-Key": "abc123"}) == "cashfree:idem:abc123"


def test_an_empty_idempotency_header_falls_back_to_the_derived_key():
    assert key_of(PAYMENT_SUCCESS, {"x-idempotency-key": ""}) == key_of(PAYMENT_SUCCESS)


def test_a_payment_key_is_derived_from_type_attempt_and_status():
    assert key_of(PAYMENT_SUCCESS) == "cashfree:payment:PAYMENT_SUCCESS_WEBHOOK:1453002795:SUCCESS"


def test_a_failed_and_a_successful_webhook_of_one_attempt_have_distinct_keys():
    failed = variant(PAYMENT_SUCCESS, b'"payment_status":"SUCCESS"', b'"payment_status":"FAILED"')
    failed = variant(failed, b"PAYMENT_SUCCESS_WEBHOOK", b"PAYMENT_FAILED_WEBHOOK")

    assert key_of(failed) != key_of(PAYMENT_SUCCESS)
    assert key_of(failed) == "cashfree:payment:PAYMENT_FAILED_WEBHOOK:1453002795:FAILED"


def test_a_redelivery_gets_the_same_key():
    first = key_of(_samples.PAYMENT_FAILED_2023, {**_samples.HEADERS_2023, "x-webhook-attempt": "1"})
    retry = key_of(_samples.PAYMENT_FAILED_2023, {**_samples.HEADERS_2023, "x-webhook-attempt": "3"})

    assert first == retry


def test_a_payment_id_sent_as_a_number_or_a_string_gives_one_key():
    as_number = variant(PAYMENT_SUCCESS, b'"cf_payment_id":"1453002795"', b'"cf_payment_id":1453002795')

    assert key_of(as_number) == key_of(PAYMENT_SUCCESS)


def test_a_refund_key_uses_our_refund_id():
    assert key_of(REFUND_SUCCESS) == "cashfree:refund:REFUND_STATUS_WEBHOOK:refund_sampleorder0413:SUCCESS"


def test_a_refund_without_our_refund_id_uses_the_gateway_refund_id():
    body = variant(REFUND_SUCCESS, b'"refund_id":"refund_sampleorder0413"', b'"refund_id":null')

    assert key_of(body) == "cashfree:refund:REFUND_STATUS_WEBHOOK:11325632:SUCCESS"


def test_a_settlement_key_uses_settlement_id_and_status():
    assert key_of(_samples.SETTLEMENT_2023) == "cashfree:settlement:SETTLEMENT_SUCCESS:79524:SUCCESS"


def test_each_dispute_update_gets_its_own_key():
    first = key_of(_samples.DISPUTE_2025)
    later = key_of(
        variant(
            _samples.DISPUTE_2025,
            b'"updated_at": "2023-09-22T16:45:10+05:30"',
            b'"updated_at": "2023-09-23T09:00:00+05:30"',
        )
    )

    assert first.startswith("cashfree:dispute:DISPUTE_UPDATED:433475257:CHARGEBACK_UNDER_REVIEW:")
    assert first != later


def envelope(event_type: str, data: dict[str, object]) -> bytes:
    return json.dumps({"type": event_type, "data": data}).encode()


def test_each_family_has_its_own_prefix_so_equal_ids_and_statuses_never_collide():
    keys = [
        key_of(
            envelope("PAYMENT_SUCCESS_WEBHOOK", {"payment": {"cf_payment_id": "7", "payment_status": "S"}})
        ),
        key_of(envelope("REFUND_STATUS_WEBHOOK", {"refund": {"refund_id": "7", "refund_status": "S"}})),
        key_of(envelope("SETTLEMENT_SUCCESS", {"settlement": {"settlement_id": "7", "status": "S"}})),
        key_of(
            envelope(
                "DISPUTE_UPDATED",
                {"dispute": {"dispute_id": "7", "dispute_status": "S", "updated_at": "2024-01-01T00:00:00Z"}},
            )
        ),
        key_of(envelope("SOMETHING_NEW", {"id": "7", "status": "S"})),
        key_of(envelope("SOMETHING_NEW", {}), {"x-idempotency-key": "7"}),
    ]

    assert [key.split(":")[1] for key in keys] == [
        "payment",
        "refund",
        "settlement",
        "dispute",
        "body",
        "idem",
    ]
    assert len(set(keys)) == len(keys)


def test_an_unknown_type_is_keyed_by_the_digest_of_its_raw_body():
    assert key_of(LAGO_LINK_EVENT) == "cashfree:body:" + hashlib.sha256(LAGO_LINK_EVENT).hexdigest()


def test_a_payment_missing_its_id_is_keyed_by_its_body_so_two_of_them_never_collide():
    first = variant(PAYMENT_SUCCESS, b'"cf_payment_id":"1453002795"', b'"cf_payment_id":null')
    second = variant(first, b'"payment_amount":1.00', b'"payment_amount":2.00')

    assert key_of(first).startswith("cashfree:body:")
    assert key_of(first) != key_of(second)


def test_a_very_long_key_is_bounded_and_still_distinct():
    long_a = variant(
        PAYMENT_SUCCESS, b'"cf_payment_id":"1453002795"', b'"cf_payment_id":"' + b"a" * 5000 + b'"'
    )
    long_b = variant(
        PAYMENT_SUCCESS, b'"cf_payment_id":"1453002795"', b'"cf_payment_id":"' + b"b" * 5000 + b'"'
    )

    assert len(key_of(long_a)) <= MAX_DEDUP_KEY_LENGTH
    assert key_of(long_a).startswith("cashfree:payment:sha256:")
    assert key_of(long_a) != key_of(long_b)
    assert len(key_of(PAYMENT_SUCCESS, {"x-idempotency-key": "k" * 10_000})) <= MAX_DEDUP_KEY_LENGTH


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (PAYMENT_SUCCESS, {}),
        (REFUND_SUCCESS, {}),
        (LAGO_LINK_EVENT, {}),
        (_samples.DISPUTE_2023, {}),
        (_samples.SETTLEMENT_2025, _samples.HEADERS_2025),
        (PAYMENT_SUCCESS, {"x-idempotency-key": "a b:c/d+e=\n\u00e9"}),
        (variant(PAYMENT_SUCCESS, b'"1453002795"', b'"id with: spaces\\n\\u00e9 and \\ud800"'), {}),
    ],
)
def test_every_key_is_safe_as_a_redis_key_part(body: bytes, headers: dict[str, str]):
    key = key_of(body, headers)

    assert REDIS_SAFE.fullmatch(key), key
    assert len(key) <= MAX_DEDUP_KEY_LENGTH


def test_separators_inside_a_part_cannot_forge_another_events_key():
    crafted = variant(PAYMENT_SUCCESS, b'"1453002795"', b'"1453002795:SUCCESS"')
    crafted = variant(crafted, b'"payment_status":"SUCCESS"', b'"payment_status":"X"')

    assert key_of(crafted) != key_of(PAYMENT_SUCCESS)

"""The audit hash chain's canonical form, written out so anyone can re-verify an exported chain."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from payments.bridges.postgres.audit import chain_hash, link_is_intact
from payments.bridges.postgres.json_values import canonical_json, from_json, to_json
from payments.domain.errors import InvalidPayload
from tests.contracts_storage import an_entry

ENTRY = an_entry(
    "pay_1",
    created_at=datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    after_state={"amount": "1.00"},
)

#: The exact bytes hashed for ENTRY after a row whose hash is "ab": sorted keys, no spaces, UTC time.
ENTRY_DOCUMENT = (
    '{"action":"payment.captured","actor_id":"user_1","after_state":{"amount":"1.00"},'
    '"before_state":{"status":"PROCESSING"},"created_at":"2026-01-01T00:00:00.000000+00:00",'
    '"ip_address":"203.0.113.7","prev_hash":"ab","request_id":"req-1","resource_id":"pay_1",'
    '"resource_type":"payment","trace_id":"trace-1","user_agent":"pytest"}'
)


def test_a_row_hash_is_the_sha256_of_its_canonical_document():
    assert chain_hash("ab", ENTRY) == hashlib.sha256(ENTRY_DOCUMENT.encode("ascii")).hexdigest()


def test_the_previous_hash_is_part_of_a_row_hash():
    assert chain_hash("ab", ENTRY) != chain_hash("ac", ENTRY)
    assert chain_hash(None, ENTRY) != chain_hash("", ENTRY)


def test_a_link_is_broken_by_a_wrong_predecessor_or_a_changed_field():
    stored = chain_hash("ab", ENTRY)

    assert link_is_intact(expected_prev="ab", prev_hash="ab", stored=stored, entry=ENTRY)
    assert not link_is_intact(expected_prev="zz", prev_hash="ab", stored=stored, entry=ENTRY)
    changed = an_entry("pay_1", created_at=ENTRY.created_at, after_state={"amount": "1.01"})
    assert not link_is_intact(expected_prev="ab", prev_hash="ab", stored=stored, entry=changed)


def test_canonical_json_sorts_keys_writes_decimals_exactly_and_escapes_to_ascii():
    value = from_json('{"b": 0.10000000000000000001, "a": ["é", 1, null, true]}')

    assert canonical_json(value) == '{"a":["\\u00e9",1,null,true],"b":0.10000000000000000001}'


def test_canonical_json_refuses_floats_because_they_are_not_what_storage_gives_back():
    with pytest.raises(TypeError):
        canonical_json({"ratio": 0.5})


def test_json_for_storage_writes_money_and_times_as_strings():
    paid_at = datetime(2026, 1, 1, 12, tzinfo=UTC)

    assert to_json({"amount": Decimal("10.50"), "at": paid_at}) == (
        '{"amount":"10.50","at":"2026-01-01T12:00:00+00:00"}'
    )


def test_json_for_storage_refuses_what_json_cannot_carry():
    with pytest.raises(InvalidPayload):
        to_json({"x": {1, 2}})
    with pytest.raises(InvalidPayload):
        to_json({"x": float("inf")})

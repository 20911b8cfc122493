"""The webhook verifier against the shared vectors and the classic mistakes of FACTS §12."""

from __future__ import annotations

import hmac
import json

import pytest

from payments.bridges.cashfree.signature import (
    InvalidWebhookSignature,
    SignatureFailure,
    WebhookVerifier,
    sign,
)
from payments.domain.errors import Unauthenticated

from ._shared import Vector, load_vectors, read_body, vector_id

VECTORS = load_vectors()
VALID = [vector for vector in VECTORS if vector.valid]
INVALID = [vector for vector in VECTORS if not vector.valid]

SECRET = "cf_test_secret_0123456789"
PREVIOUS_SECRET = "cf_test_secret_previous_9876"
SENT_MS = 1_746_427_759_733
SENT = str(SENT_MS)
TOLERANCE_SECONDS = 300
TOLERANCE_MS = TOLERANCE_SECONDS * 1000
BODY = read_body("payment_success.body")


def verifier(*secrets: str, now_ms: int = SENT_MS) -> WebhookVerifier:
    return WebhookVerifier(secrets or (SECRET,), tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: now_ms)


def failure(check: WebhookVerifier, *, body: bytes, timestamp: str | None, signature: str | None) -> str:
    with pytest.raises(InvalidWebhookSignature) as caught:
        check.verify(body=body, timestamp=timestamp, signature=signature)
    return caught.value.reason


def test_the_shared_vectors_include_valid_and_invalid_entries():
    assert len(VALID) >= 3
    assert len(INVALID) >= 3


@pytest.mark.parametrize("vector", VALID, ids=vector_id)
def test_sign_reproduces_each_valid_vector(vector: Vector):
    assert sign(vector.secret, vector.timestamp, vector.body) == vector.signature


@pytest.mark.parametrize("vector", VALID, ids=vector_id)
def test_each_valid_vector_verifies_with_the_clock_set_near_its_time(vector: Vector):
    check = WebhookVerifier(
        [vector.secret], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: vector.sent_ms + 2_000
    )

    check.verify(body=vector.body, timestamp=vector.timestamp, signature=vector.signature)


@pytest.mark.parametrize("vector", INVALID, ids=vector_id)
def test_each_invalid_vector_is_refused_as_a_mismatch(vector: Vector):
    check = WebhookVerifier(
        [vector.secret], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: vector.sent_ms
    )

    reason = failure(check, body=vector.body, timestamp=vector.timestamp, signature=vector.signature)

    assert reason == SignatureFailure.SIGNATURE_MISMATCH


def test_a_dot_between_timestamp_and_body_is_refused():
    dotted = sign(SECRET, SENT, b"." + BODY)

    assert failure(verifier(), body=BODY, timestamp=SENT, signature=dotted) == "signature_mismatch"


def test_a_signature_over_reserialised_json_is_refused():
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reserialised != BODY
    assert b'"order_amount":2.0,' in reserialised

    assert (
        failure(verifier(), body=BODY, timestamp=SENT, signature=sign(SECRET, SENT, reserialised))
        == "signature_mismatch"
    )
    assert (
        failure(verifier(), body=reserialised, timestamp=SENT, signature=sign(SECRET, SENT, BODY))
        == "signature_mismatch"
    )


def test_a_signature_made_with_another_secret_is_refused():
    forged = sign("someone-elses-secret", SENT, BODY)

    assert failure(verifier(), body=BODY, timestamp=SENT, signature=forged) == "signature_mismatch"


@pytest.mark.parametrize("position", [0, 100, len(BODY) // 2, len(BODY) - 1])
def test_a_single_tampered_byte_is_refused(position: int):
    tampered = bytearray(BODY)
    tampered[position] ^= 0x01

    reason = failure(verifier(), body=bytes(tampered), timestamp=SENT, signature=sign(SECRET, SENT, BODY))

    assert reason == "signature_mismatch"


def test_a_signature_for_another_timestamp_is_refused():
    signature = sign(SECRET, SENT, BODY)
    later = str(SENT_MS + 1)

    assert failure(verifier(), body=BODY, timestamp=later, signature=signature) == "signature_mismatch"


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_signature_header_is_refused(missing: str | None):
    assert failure(verifier(), body=BODY, timestamp=SENT, signature=missing) == "missing_signature"


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_timestamp_header_is_refused(missing: str | None):
    signature = sign(SECRET, SENT, BODY)

    assert failure(verifier(), body=BODY, timestamp=missing, signature=signature) == "missing_timestamp"


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "-1746427759733",
        "1746427759.733",
        "1.7e12",
        " 1746427759733",
        "1746427759733\n",
        "١٧٤٦",
        "9" * 21,
    ],
)
def test_a_timestamp_that_is_not_plain_digits_is_refused(timestamp: str):
    signature = sign(SECRET, "1746427759733", BODY)

    assert failure(verifier(), body=BODY, timestamp=timestamp, signature=signature) == "malformed_timestamp"


@pytest.mark.parametrize("offset_ms", [-TOLERANCE_MS, 0, TOLERANCE_MS])
def test_a_timestamp_just_inside_the_window_is_accepted(offset_ms: int):
    sent = str(SENT_MS + offset_ms)

    verifier().verify(body=BODY, timestamp=sent, signature=sign(SECRET, sent, BODY))


def test_a_timestamp_just_older_than_the_window_is_refused_as_stale():
    sent = str(SENT_MS - TOLERANCE_MS - 1)

    assert (
        failure(verifier(), body=BODY, timestamp=sent, signature=sign(SECRET, sent, BODY))
        == "stale_timestamp"
    )


def test_a_timestamp_just_ahead_of_the_window_is_refused_as_future():
    sent = str(SENT_MS + TOLERANCE_MS + 1)

    assert (
        failure(verifier(), body=BODY, timestamp=sent, signature=sign(SECRET, sent, BODY))
        == "future_timestamp"
    )


def test_a_forged_stale_delivery_reads_as_a_mismatch_not_as_stale():
    sent = str(SENT_MS - 10 * TOLERANCE_MS)

    assert failure(verifier(), body=BODY, timestamp=sent, signature="AAAA") == "signature_mismatch"


def test_a_seconds_timestamp_is_read_as_seconds():
    seconds = "1746427759"
    signature = sign(SECRET, seconds, BODY)

    verifier(now_ms=1_746_427_759_000 + TOLERANCE_MS).verify(
        body=BODY, timestamp=seconds, signature=signature
    )
    # Read as milliseconds it would be a 1970 time, fresh for a clock stopped in 1970: it is not.
    reason = failure(verifier(now_ms=1_746_427_759), body=BODY, timestamp=seconds, signature=signature)
    assert reason == "future_timestamp"


def test_a_seconds_timestamp_far_from_the_clock_is_stale():
    lago = next(vector for vector in VALID if len(vector.timestamp) == 10)
    check = WebhookVerifier([lago.secret], tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: SENT_MS)

    assert (
        failure(check, body=lago.body, timestamp=lago.timestamp, signature=lago.signature)
        == "stale_timestamp"
    )


def test_the_previous_secret_is_accepted_during_a_rotation():
    rotating = verifier(SECRET, PREVIOUS_SECRET)

    rotating.verify(body=BODY, timestamp=SENT, signature=sign(PREVIOUS_SECRET, SENT, BODY))
    rotating.verify(body=BODY, timestamp=SENT, signature=sign(SECRET, SENT, BODY))


def test_a_secret_outside_the_accepted_set_is_refused_during_a_rotation():
    rotating = verifier(SECRET, PREVIOUS_SECRET)
    unknown = sign("cf_test_secret_retired_long_ago", SENT, BODY)

    assert failure(rotating, body=BODY, timestamp=SENT, signature=unknown) == "signature_mismatch"


def test_signatures_are_compared_with_compare_digest_against_every_secret(monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def recording_compare_digest(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording_compare_digest)
    given = sign(SECRET, SENT, BODY)

    verifier(SECRET, PREVIOUS_SECRET).verify(body=BODY, timestamp=SENT, signature=given)

    # The current secret matches, yet the previous one is compared too: timing does not tell which signed.
    assert calls == [
        (sign(SECRET, SENT, BODY).encode(), given.encode()),
        (sign(PREVIOUS_SECRET, SENT, BODY).encode(), given.encode()),
    ]


def test_a_refusal_never_carries_the_secret_or_the_expected_signature():
    expected = sign(SECRET, SENT, BODY)

    with pytest.raises(InvalidWebhookSignature) as caught:
        verifier().verify(body=BODY, timestamp=SENT, signature="bm90IGl0")

    error = caught.value
    shown = " ".join([str(error), repr(error), str(error.reason), repr(error.args)])
    assert SECRET not in shown
    assert expected not in shown
    assert isinstance(error, Unauthenticated)
    assert error.code == "invalid_webhook_signature"


def test_a_non_ascii_signature_is_refused_without_crashing():
    assert failure(verifier(), body=BODY, timestamp=SENT, signature="sîgnature\udcff") == "signature_mismatch"


@pytest.mark.parametrize("secrets", [[], [""], [SECRET, ""]])
def test_a_verifier_needs_at_least_one_non_empty_secret(secrets: list[str]):
    with pytest.raises(ValueError, match="secret"):
        WebhookVerifier(secrets, tolerance_seconds=TOLERANCE_SECONDS, now_ms=lambda: SENT_MS)


def test_a_verifier_needs_a_positive_tolerance():
    with pytest.raises(ValueError, match="tolerance"):
        WebhookVerifier([SECRET], tolerance_seconds=0, now_ms=lambda: SENT_MS)

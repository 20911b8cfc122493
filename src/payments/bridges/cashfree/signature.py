"""Cashfree's webhook signature: base64(HMAC-SHA256(client secret, timestamp + raw body)).

The timestamp header value and the raw body bytes are concatenated with nothing between them
(FACTS §7; the "." in Cashfree's pseudo-code is PHP concatenation, not a separator).

``WebhookVerifier`` checks a delivery before anything parses it: the signature over the exact bytes
received, against every accepted secret, and the timestamp's distance from our clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Final

from payments.domain.errors import Unauthenticated

#: A timestamp below this value is read as seconds, at or above it as milliseconds. 10**11 ms is
#: 1973-03-03 (before any webhook existed) and 10**11 s is the year 5138, so no real value is ambiguous.
SECONDS_BELOW: Final = 10**11

#: Plain ASCII digits only (``str.isdigit`` would also accept other scripts' digits). The bound only keeps
#: a hostile header from costing a huge integer parse; anything past 13 digits is far in the future anyway.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,20}")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-webhook-signature`` Cashfree sends for ``body`` signed at ``timestamp`` (ms since epoch)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch, the unit of ``x-webhook-timestamp``."""
    return time.time_ns() // 1_000_000


class SignatureFailure(StrEnum):
    """Why a webhook was refused; a closed set, safe as a log field or metric label."""

    MISSING_SIGNATURE = "missing_signature"  #: no (or an empty) x-webhook-signature header
    MISSING_TIMESTAMP = "missing_timestamp"  #: no (or an empty) x-webhook-timestamp header
    MALFORMED_TIMESTAMP = "malformed_timestamp"  #: the timestamp is not a run of ASCII digits
    STALE_TIMESTAMP = "stale_timestamp"  #: genuinely signed, but older than the window (a replay?)
    FUTURE_TIMESTAMP = "future_timestamp"  #: genuinely signed, but ahead of the window (clock skew?)
    SIGNATURE_MISMATCH = "signature_mismatch"  #: no accepted secret produces this signature


_MESSAGES: Final[dict[SignatureFailure, str]] = {
    SignatureFailure.MISSING_SIGNATURE: "the webhook has no x-webhook-signature header",
    SignatureFailure.MISSING_TIMESTAMP: "the webhook has no x-webhook-timestamp header",
    SignatureFailure.MALFORMED_TIMESTAMP: "the webhook timestamp is not a Unix time in digits",
    SignatureFailure.STALE_TIMESTAMP: "the webhook timestamp is older than the accepted window",
    SignatureFailure.FUTURE_TIMESTAMP: "the webhook timestamp is further ahead than the accepted window",
    SignatureFailure.SIGNATURE_MISMATCH: "the webhook signature does not match",
}


class InvalidWebhookSignature(Unauthenticated):
    """The webhook's signature or timestamp is not acceptable."""

    code = "invalid_webhook_signature"

    def __init__(self, reason: SignatureFailure) -> None:
        # The message is fixed per reason: it never carries a secret, an expected signature or the body.
        super().__init__(_MESSAGES[reason])
        #: Why the webhook was refused.
        self.reason = reason


class WebhookVerifier:
    """Checks ``x-webhook-signature`` and ``x-webhook-timestamp`` on the raw body of a Cashfree webhook.

    ``secrets`` are every key accepted right now, current first: after a rotation, the previous client
    secret stays in the list until deliveries and retries signed with it have drained (FACTS §7).
    A timestamp is accepted within ± ``tolerance_seconds`` of ``now_ms()``.

    Timestamps: Cashfree sends milliseconds (13 digits). A value below ``SECONDS_BELOW`` (10 digits
    today) is read as seconds, as in older integrations and the published lago vector, rather than as
    a 1970 date in milliseconds. This is no loophole: the timestamp is inside the signed message, so only
    a holder of the secret can choose its unit, and either way it must fall inside the same window.
    """

    def __init__(self, secrets: Sequence[str], *, tolerance_seconds: int, now_ms: Callable[[], int]) -> None:
        accepted = list(dict.fromkeys(secrets))  # drop repeats (a webhook secret equal to the key)
        if not accepted or any(not secret for secret in accepted):
            raise ValueError("at least one secret is needed, and none may be empty")
        if tolerance_seconds <= 0:
            raise ValueError("tolerance_seconds must be positive")
        self._secrets = tuple(accepted)
        self._tolerance_ms = tolerance_seconds * 1000
        self._now_ms = now_ms

    def verify(self, *, body: bytes, timestamp: str | None, signature: str | None) -> None:
        """Return if the delivery is genuine and fresh, else raise ``InvalidWebhookSignature``.

        ``body`` must be the exact bytes received: it is never parsed or re-serialised here.
        """
        if not signature:
            raise InvalidWebhookSignature(SignatureFailure.MISSING_SIGNATURE)
        if not timestamp:
            raise InvalidWebhookSignature(SignatureFailure.MISSING_TIMESTAMP)
        if not _TIMESTAMP.fullmatch(timestamp):
            raise InvalidWebhookSignature(SignatureFailure.MALFORMED_TIMESTAMP)
        # The signature goes first, so "stale" and "future" are only ever said of genuine deliveries:
        # a forged request always reads as a mismatch, and a stale reason points at replay or clock skew.
        if not self._signed_by_an_accepted_secret(body, timestamp, signature):
            raise InvalidWebhookSignature(SignatureFailure.SIGNATURE_MISMATCH)
        self._check_freshness(timestamp_ms(timestamp))

    def _signed_by_an_accepted_secret(self, body: bytes, timestamp: str, signature: str) -> bool:
        given = signature.encode("utf-8", errors="replace")
        matched = False
        # Every secret is compared, without stopping at the first match, so the time taken does not
        # tell which secret (current or previous) signed the delivery.
        for secret in self._secrets:
            expected = sign(secret, timestamp, body).encode("ascii")
            matched |= hmac.compare_digest(expected, given)
        return matched

    def _check_freshness(self, sent_ms: int) -> None:
        now = self._now_ms()
        if sent_ms < now - self._tolerance_ms:
            raise InvalidWebhookSignature(SignatureFailure.STALE_TIMESTAMP)
        if sent_ms > now + self._tolerance_ms:
            raise InvalidWebhookSignature(SignatureFailure.FUTURE_TIMESTAMP)


def timestamp_ms(timestamp: str) -> int:
    """The ``x-webhook-timestamp`` value (digits) in milliseconds; a seconds value is scaled up."""
    value = int(timestamp)
    return value * 1000 if value < SECONDS_BELOW else value

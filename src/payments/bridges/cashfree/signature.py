"""Cashfree's webhook signature: base64(HMAC-SHA256(client secret, timestamp + raw body)).

The timestamp header value and the raw body bytes are concatenated with nothing between them
(FACTS §7; the "." in Cashfree's pseudo-code is PHP concatenation, not a separator).
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-webhook-signature`` Cashfree sends for ``body`` signed at ``timestamp`` (ms since epoch)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")

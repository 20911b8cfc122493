"""Refund ids derived from the caller's idempotency key (as payment ids are): a retried initiate can
only find the refund it made before, here and at Cashfree (which keys refunds by our id)."""

from __future__ import annotations

import base64
import hashlib


def refund_id_for(user_id: str, payment_id: str, idempotency_key: str) -> str:
    """``rf_`` and 26 base32 characters: within Cashfree's 3 to 40 of [A-Za-z0-9_-]."""
    digest = hashlib.sha256("\x1f".join(("refund", user_id, payment_id, idempotency_key)).encode()).digest()
    return "rf_" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()[:26]

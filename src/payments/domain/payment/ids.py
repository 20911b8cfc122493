"""Payment and order ids derived from the caller's idempotency key.

The same user and key always give the same ids, so a retried create (a client retry, a redelivered
command, a crash and restart) can only ever find the payment and the gateway order it made before.
"""

from __future__ import annotations

import base64
import hashlib


def _digest(*parts: str) -> str:
    raw = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def payment_id_for(user_id: str, idempotency_key: str) -> str:
    """``pay_`` and 26 base32 characters (130 bits): unguessable, fixed for (user, key)."""
    return "pay_" + _digest("payment", user_id, idempotency_key)[:26]


def order_id_for(payment_id: str) -> str:
    """The gateway order id of a payment (Cashfree allows 3 to 45 of [A-Za-z0-9_-])."""
    return "ord_" + payment_id.removeprefix("pay_")

"""Redis key names (DESIGN §6), one function each, so every key of a kind is spelled in one place."""

from __future__ import annotations


def idempotency_payment(key: str) -> str:
    """The stored response of a payment write, by its ``Idempotency-Key``."""
    return f"idempotency:payment:{key}"


def payment_lock(payment_id: str) -> str:
    """The lock that serialises Cashfree calls for one payment."""
    return f"lock:payment:{payment_id}"


def webhook_event(event_id: str) -> str:
    """The replay cache entry of one webhook event."""
    return f"webhook:event:{event_id}"


def refund_request(refund_id: str) -> str:
    """The de-duplication entry of one refund request."""
    return f"refund:request:{refund_id}"


def schedule_lease(job: str, slot: int) -> str:
    """The lease on one firing of a timer or crontab: ``slot`` numbers the firing, so each is leased once."""
    return f"lease:schedule:{job}:{slot}"


def rate_limit_prefix() -> str:
    """The prefix of every rate-limit window. ``limits`` appends ``:{limit}/{subject}/{amount}/{multiples}/
    {granularity}`` (``ratelimit:writes/u1/30/1/minute``), a list of the hits' timestamps."""
    return "ratelimit"

"""``x-idempotency-key`` on writes: the first answer is stored for 24 sandbox hours and replayed.

Keys are scoped per endpoint (method and route template). The fingerprint is the concrete path plus
the body parsed and re-serialised with sorted keys, so whitespace and key order do not matter but a
different order id or field does: the same key with a different request answers 422 (SPEC
``IdempotencyError``). Answers of 429 and 5xx are not stored: they say "try again".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from payments.bridges.cashfree.sandbox.errors import idempotency_mismatch
from payments.bridges.cashfree.sandbox.jsonbody import loads

#: How long a key is remembered (SKILLS; FACTS §1).
TTL: Final = timedelta(hours=24)


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes
    content_type: str
    expires_at: datetime


def fingerprint(path: str, body: bytes) -> str:
    """What makes two requests "the same": their path and their JSON content."""
    try:
        canonical = json.dumps(loads(body), sort_keys=True, default=str).encode() if body else b""
    except ValueError:
        canonical = body
    return hashlib.sha256(path.encode() + b"\n" + canonical).hexdigest()


def is_storable(status: int) -> bool:
    return status != 429 and status < 500


class IdempotencyStore:
    """Answers by ``(scope, key)``, each kept until its ``expires_at`` on the sandbox clock."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], StoredAnswer] = {}

    def replay(self, scope: str, key: str, print_: str, now: datetime) -> StoredAnswer | None:
        """The stored answer for this key; 422 when it was stored for a different request."""
        stored = self._answers.get((scope, key))
        if stored is None or stored.expires_at <= now:
            return None
        if stored.fingerprint != print_:
            raise idempotency_mismatch()
        return stored

    def remember(self, scope: str, key: str, answer: StoredAnswer) -> None:
        self._answers[(scope, key)] = answer

    def purge(self, now: datetime) -> None:
        """Forget every expired key."""
        for slot in [slot for slot, answer in self._answers.items() if answer.expires_at <= now]:
            del self._answers[slot]

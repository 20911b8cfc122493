"""``Idempotency-Key`` on writes, with Stripe's semantics (DESIGN §7, issue 4 §4).

A write names a key; ``scoped_key`` ties it to the caller and the route, so two users (or one user's
create and verify) never share one. The request's ``fingerprint`` is its method, path and canonical
body. ``run_idempotently`` then asks the store:

- a new key runs the work; a final answer (2xx other than 202, or 4xx) is stored, and anything else
  (202: the command is queued; 5xx: it failed in a way a retry may fix) frees the key, so the retry
  runs again, which is safe because every command's ids derive from the key;
- the same key and fingerprint after completion replays the stored status and body, marked with
  ``Idempotent-Replayed: true``;
- the same key with another fingerprint is 422 ``idempotency_key_reused``;
- the same key while the first request still runs is 409 ``request_in_flight``.

Requests refused before the work starts (bad key, malformed or invalid body) store nothing: with a
corrected body, the same key may be used again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Final

from aiohttp import hdrs, web

from payments.domain.errors import PaymentsError
from payments.domain.idempotency import BeginOutcome, Begun, IdempotencyStore, StoredResponse
from payments.web.errors import IdempotencyKeyInvalid, IdempotencyKeyRequired
from payments.web.middlewares import domain_error_response, error_response

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "REPLAYED_HEADER",
    "BeginOutcome",
    "Begun",
    "IdempotencyStore",
    "StoredResponse",
    "canonical_json",
    "client_key",
    "fingerprint",
    "run_idempotently",
    "scoped_key",
]

IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
#: Set on a replayed answer, so a client can tell a replay from a fresh one.
REPLAYED_HEADER: Final = "Idempotent-Replayed"
#: Stripe's bound; printable ASCII keeps keys safe in logs and headers.
_CLIENT_KEY: Final = re.compile(r"[\x20-\x7e]{1,255}")
#: How soon a client may retry a request refused as in flight.
_IN_FLIGHT_RETRY_AFTER: Final = "1"

#: The work guarded by a key: it answers, or raises a domain error that becomes its answer.
Work = Callable[[], Awaitable[web.Response]]

_log = logging.getLogger(__name__)


def client_key(request: web.Request) -> str:
    """The request's Idempotency-Key, or 400 (``idempotency_key_required`` / ``_invalid``)."""
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None or not key.strip():
        raise IdempotencyKeyRequired
    if _CLIENT_KEY.fullmatch(key) is None:
        raise IdempotencyKeyInvalid
    return key


def scoped_key(user_id: str, route: str, key: str) -> str:
    """The store's key for ``key`` sent by ``user_id`` to ``route``: one hex digest, no user data."""
    return hashlib.sha256("\x1f".join((user_id, route, key)).encode("utf-8")).hexdigest()


def fingerprint(method: str, path: str, body: object) -> str:
    """What makes two requests "the same": method, path and the body in canonical JSON."""
    text = "\n".join((method.upper(), path, canonical_json(body)))
    # surrogatepass: JSON may spell a lone surrogate (\ud800), and fingerprinting must never fail.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no whitespace; numbers (parsed as ``Decimal``) kept as written.

    ``json.dumps`` cannot write a ``Decimal`` as a number, and turning it into a float would make
    ``10.10`` and ``10.1000000000000001`` the same request, so the few JSON types are written here.
    """
    if isinstance(value, dict):
        items = sorted(value.items())
        pairs = (f"{json.dumps(k, ensure_ascii=False)}:{canonical_json(v)}" for k, v in items)
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, str | bool | int):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


async def run_idempotently(
    store: IdempotencyStore, *, key: str, fingerprint: str, work: Work
) -> web.Response:
    """Run ``work`` once per key and fingerprint, replaying its final answer to repeats."""
    begun = await store.begin(key, fingerprint)
    if begun.outcome is BeginOutcome.REPLAY and begun.response is not None:
        return _replay(begun.response)
    if begun.outcome is BeginOutcome.MISMATCH:
        return error_response(
            422, "idempotency_key_reused", "This Idempotency-Key was already used with a different request."
        )
    if begun.outcome is BeginOutcome.IN_FLIGHT:
        return error_response(
            409,
            "request_in_flight",
            "A request with this Idempotency-Key is still in progress; retry shortly.",
            headers={hdrs.RETRY_AFTER: _IN_FLIGHT_RETRY_AFTER},
        )
    try:
        response = await _answer(work)
    except BaseException:
        await _release(store, key)
        raise
    await _settle(store, key, fingerprint, response)
    return response


def is_final(status: int) -> bool:
    """Whether an answer is the request's last word: 2xx other than 202 (queued), or 4xx."""
    if status == 202:
        return False
    return 200 <= status < 300 or 400 <= status < 500


async def _answer(work: Work) -> web.Response:
    try:
        return await work()
    except PaymentsError as error:
        # Rendered here, not by the error middleware, so a final 4xx is stored like a success.
        return domain_error_response(error)


async def _settle(store: IdempotencyStore, key: str, fingerprint: str, response: web.Response) -> None:
    body = response.body
    if not (is_final(response.status) and isinstance(body, bytes)):
        await _release(store, key)
        return
    stored = StoredResponse(response.status, body, response.headers.get(hdrs.CONTENT_TYPE, ""))
    try:
        await store.complete(key, fingerprint, stored)
    except PaymentsError as error:
        # The work is done and this is its answer. Unstored, the key stays in flight until it expires;
        # a retry after that re-sends the command, which finds what this one did (ids derive from the key).
        _log.warning("could not store an idempotent answer: %s", error.message)


async def _release(store: IdempotencyStore, key: str) -> None:
    try:
        await store.release(key)
    except PaymentsError as error:
        # The in-flight entry expires by itself soon; the request's own outcome matters more.
        _log.warning("could not release an idempotency key: %s", error.message)


def _replay(stored: StoredResponse) -> web.Response:
    headers = {REPLAYED_HEADER: "true"}
    if stored.content_type:
        headers[hdrs.CONTENT_TYPE] = stored.content_type
    return web.Response(status=stored.status, body=stored.body, headers=headers)

"""One Cashfree call over HTTP: headers, idempotency keys, retries, logging, and errors mapped.

Every call sends ``x-api-version`` and ``x-request-id``; every call but Order Pay (which SPEC makes
without credentials) sends ``x-client-id`` and ``x-client-secret``; every write also sends an
``x-idempotency-key`` derived from the business operation and reused on each retry. Network errors,
timeouts, 5xx and 429 are retried by tenacity with exponential backoff and jitter, waiting at least
the ``x-ratelimit-retry`` Cashfree asked for after a 429. Any other answer is final. Non-2xx answers
become domain errors (``errors.py``). No error, log line or recorded request carries the secret.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import aiohttp
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)

from payments.bridges.cashfree import wire
from payments.bridges.cashfree.errors import UnreadableResponse, error_for_status
from payments.bridges.cashfree.models import ErrorBody
from payments.domain.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

#: The version our models describe (SPEC); the official SDKs default to others (FACTS §11).
DEFAULT_API_VERSION: Final = "2025-01-01"
#: Namespace of our name-based idempotency keys; fixed forever, or retries across a deploy would differ.
_KEY_NAMESPACE: Final = uuid.UUID("0b7e6a52-3c0f-5d8e-9a41-7c2f1e6d9b30")
#: Wait before retry n: 0.5 s, 1 s, 2 s ... plus up to 0.5 s of jitter so clients do not retry in step.
_BACKOFF: Final = wait_exponential_jitter(multiplier=0.5, max=30, jitter=0.5)
#: x-ratelimit-retry is 1-59 s (FACTS §9); a larger value is capped rather than parking a call for long.
_MAX_RATE_LIMIT_WAIT: Final = 60.0
_MASK: Final = "***"

M = TypeVar("M", bound=BaseModel)


def idempotency_key(operation: str) -> str:
    """The ``x-idempotency-key`` of one business operation, e.g. ``order:{order_id}``.

    SPEC types the header as a UUID, so the operation name is hashed into a name-based UUID (v5):
    the same operation always gets the same key, on every retry and after a restart.
    """
    return str(uuid.uuid5(_KEY_NAMESPACE, operation))


@dataclass(frozen=True, kw_only=True)
class SentRequest:
    """One HTTP request as the client sent it (``x-client-secret`` masked), for contract tests."""

    method: str
    url: str
    #: The route with placeholders, e.g. ``/orders/{order_id}/refunds``.
    path_template: str
    headers: Mapping[str, str]
    body: bytes | None
    attempt: int


@dataclass(frozen=True)
class Call:
    """One logical API call: what to send, and the route template that logs and errors name."""

    method: str
    template: str
    path: str
    body: bytes | None = None
    idempotency_key: str | None = None
    #: Order Pay is called without client credentials (SPEC ``security: []``, FACTS §3).
    authenticated: bool = True


@dataclass(frozen=True)
class _Reply:
    attempt: int
    status: int
    body: bytes
    retry_after: float | None
    #: Cashfree's ``x-request-id`` response header: what its support asks for.
    request_id: str | None


@dataclass(frozen=True)
class _NoAnswer:
    """A network error or timeout. Only the exception's type is kept: its text is not ours to vouch for."""

    attempt: int
    error: str


_Outcome = _Reply | _NoAnswer


class Transport:
    """Sends ``Call``s on one aiohttp session; ``CashfreeClient`` builds the calls."""

    def __init__(
        self,
        *,
        base_url: str,
        app_id: str,
        secret_key: str,
        api_version: str = DEFAULT_API_VERSION,
        timeout_seconds: float = 15.0,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        request_id: Callable[[], str] | None = None,
        on_request: Callable[[SentRequest], None] | None = None,
    ) -> None:
        if timeout_seconds <= 0 or max_retries < 0:
            raise ValueError("timeout_seconds must be positive and max_retries at least 0")
        self._base_url = base_url.rstrip("/")
        self._app_id = app_id
        self._secret = secret_key
        self._api_version = api_version
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._max_retries = max_retries
        self._sleep = sleep
        self._request_id = request_id
        self._on_request = on_request
        self._session: aiohttp.ClientSession | None = None

    @property
    def base_url(self) -> str:
        return self._base_url

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, call: Call) -> Any:
        """Try until the answer is final; return its parsed 2xx body or raise the domain error."""
        outcome = await self._with_retries(call, self._new_request_id())
        if isinstance(outcome, _NoAnswer):
            raise DependencyUnavailable(
                f"Cashfree did not answer {call.method} {call.template}:"
                f" {outcome.error} on try {outcome.attempt} of {self._max_retries + 1}"
            )
        if not 200 <= outcome.status < 300:
            raise error_for_status(
                outcome.status,
                self._error_body(outcome.body),
                retry_after=outcome.retry_after,
                request_id=outcome.request_id,
            )
        return _json(outcome, call)

    async def _with_retries(self, call: Call, request_id: str) -> _Outcome:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=_wait_before_retry,
            retry=retry_if_result(_is_transient),
            # When the tries are spent, hand back the last answer (mapped by send) instead of RetryError.
            retry_error_callback=_last_outcome,
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(call, state),
        )
        return await retrying(self._attempt, call, request_id, itertools.count(1))

    async def _attempt(self, call: Call, request_id: str, attempts: Iterator[int]) -> _Outcome:
        attempt = next(attempts)
        url = self._base_url + call.path
        headers = self._headers(call, request_id)
        self._record(call, url, headers, attempt)
        started = time.monotonic()
        outcome: _Outcome
        try:
            async with self._open_session().request(
                call.method, url, data=call.body, headers=headers
            ) as answer:
                body = await answer.read()
                retry_after = _retry_after(answer.headers.get("x-ratelimit-retry"))
                outcome = _Reply(
                    attempt, answer.status, body, retry_after, answer.headers.get("x-request-id")
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            outcome = _NoAnswer(attempt, type(error).__name__)
        _log_attempt(call, outcome, request_id, time.monotonic() - started)
        return outcome

    def _headers(self, call: Call, request_id: str) -> dict[str, str]:
        headers = {
            "accept": "application/json",
            "x-api-version": self._api_version,
            "x-request-id": request_id,
        }
        if call.authenticated:
            headers["x-client-id"] = self._app_id
            headers["x-client-secret"] = self._secret
        if call.body is not None:
            headers["content-type"] = "application/json"
        if call.idempotency_key is not None:
            headers["x-idempotency-key"] = call.idempotency_key
        return headers

    def _record(self, call: Call, url: str, headers: Mapping[str, str], attempt: int) -> None:
        if self._on_request is None:
            return
        shown = {name: _MASK if name == "x-client-secret" else value for name, value in headers.items()}
        sent = SentRequest(
            method=call.method,
            url=url,
            path_template=call.template,
            headers=shown,
            body=call.body,
            attempt=attempt,
        )
        self._on_request(sent)

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the Cashfree client is not open; use it as `async with CashfreeClient(...)`")
        return self._session

    def _new_request_id(self) -> str:
        given = self._request_id() if self._request_id is not None else ""
        return given or uuid.uuid4().hex

    def _error_body(self, body: bytes) -> ErrorBody:
        """Cashfree's error body, its text fields cleared of our secret in case a server echoes it."""
        try:
            parsed = ErrorBody.model_validate(wire.loads(body))
        except ValueError:
            return ErrorBody()
        fields = ("message", "code", "type", "help")
        return parsed.model_copy(update={name: self._redact(getattr(parsed, name)) for name in fields})

    def _redact(self, text: str | None) -> str | None:
        return text.replace(self._secret, _MASK) if text and self._secret else text


# Helpers below raise *after* their except blocks, so a raised error has no __context__ that could
# carry a response body (or, from a misbehaving server, anything else) into logs and tracebacks.


def _json(reply: _Reply, call: Call) -> Any:
    try:
        return wire.loads(reply.body)
    except ValueError:
        problem = "a body that is not JSON"
    raise UnreadableResponse(f"Cashfree answered {call.method} {call.template} with {problem}")


def read_one(kind: type[M], document: Any, call: Call) -> M:
    try:
        return kind.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        problem = f"{'.'.join(str(part) for part in first['loc']) or 'body'}: {first['msg']}"
    raise UnreadableResponse(
        f"Cashfree's answer to {call.method} {call.template} is not {kind.__name__}: {problem}"
    )


def read_many(kind: type[M], document: Any, call: Call) -> list[M]:
    if not isinstance(document, list):
        raise UnreadableResponse(f"Cashfree's answer to {call.method} {call.template} is not a list")
    return [read_one(kind, item, call) for item in document]


def _retry_after(header: str | None) -> float | None:
    try:
        seconds = float(header) if header else math.nan
    except ValueError:
        return None
    return min(max(seconds, 0.0), _MAX_RATE_LIMIT_WAIT) if math.isfinite(seconds) else None


def _is_transient(outcome: _Outcome) -> bool:
    """Network errors, timeouts, 5xx and 429 may pass; every other answer is final."""
    return isinstance(outcome, _NoAnswer) or outcome.status >= 500 or outcome.status == 429


def _wait_before_retry(state: RetryCallState) -> float:
    """Exponential backoff with jitter; after a 429, at least the x-ratelimit-retry Cashfree asked for."""
    backoff = _BACKOFF(state)
    outcome = _last_outcome(state)
    if isinstance(outcome, _Reply) and outcome.status == 429 and outcome.retry_after is not None:
        return max(backoff, outcome.retry_after)
    return backoff


def _last_outcome(state: RetryCallState) -> _Outcome:
    if state.outcome is None:
        raise RuntimeError("tenacity asked for an outcome before the first try")
    return cast(_Outcome, state.outcome.result())


def _log_attempt(call: Call, outcome: _Outcome, request_id: str, seconds: float) -> None:
    """One line per try: route template (never ids), status, try, duration and both request ids."""
    status: int | str = outcome.status if isinstance(outcome, _Reply) else outcome.error
    their_id = outcome.request_id if isinstance(outcome, _Reply) else None
    logger.log(
        _level(outcome),
        "Cashfree %s %s -> %s (try %d, %.3f s, x-request-id %s, Cashfree's %s)",
        call.method,
        call.template,
        status,
        outcome.attempt,
        seconds,
        request_id,
        their_id,
        extra={
            "method": call.method,
            "path": call.template,
            "status": status,
            "attempt": outcome.attempt,
            "durationSeconds": round(seconds, 6),
            "sentRequestId": request_id,
            "cashfreeRequestId": their_id,
        },
    )


def _level(outcome: _Outcome) -> int:
    if isinstance(outcome, _Reply) and outcome.status in (401, 403):
        return logging.ERROR  # our credentials: nothing works until an operator fixes them
    if isinstance(outcome, _Reply) and (outcome.status < 400 or outcome.status == 404):
        return logging.INFO
    return logging.WARNING


def _log_retry(call: Call, state: RetryCallState) -> None:
    wait = state.upcoming_sleep
    logger.warning(
        "Cashfree %s %s: retrying in %.2f s", call.method, call.template, wait, extra={"retryInSeconds": wait}
    )

"""W3C trace context and our request and correlation ids, carried from HTTP into messages and agents.

A ``TraceContext`` is built once per unit of work: per HTTP request with ``from_http_headers`` and per
consumed message with ``from_message_headers``. Both keep the caller's trace id when its ``traceparent``
is valid and always start a new span of their own. Ids that arrive from outside are accepted only when
they match a short, safe pattern, so they can go into logs and headers without escaping. The current
context lives in a ``ContextVar``: ``use_trace`` sets it for a block, and tasks started inside the block
inherit it because asyncio copies the context. ``activate_trace`` sets it without a block, for a
stream that switches trace with each message it hands to its agent.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from multidict import CIMultiDict, CIMultiDictProxy

#: Outgoing traceparent flags: we record every span we start ("sampled").
_SAMPLED: Final = "01"

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE_ID: Final = "0" * 32
_ZERO_SPAN_ID: Final = "0" * 16
#: version-traceid-parentid-flags, lowercase hex only (W3C Trace Context §3.2).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
#: A version 00 header is exactly this long; later versions may append fields after a dash.
_TRACEPARENT_V00_LENGTH: Final = 55
#: Ids we accept from callers: short and made of characters that need no escaping anywhere.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_CURRENT: ContextVar[TraceContext | None] = ContextVar("payments_trace_context", default=None)


@dataclass(frozen=True)
class TraceContext:
    """The ids that tie one request or message to every log line, event and span it causes."""

    #: W3C trace id: 32 lowercase hex digits, not all zero; shared by every span of one trace.
    trace_id: str
    #: W3C span (parent) id of the work we are doing now: 16 lowercase hex digits, not all zero.
    span_id: str
    #: Id of the request (or message) that started this work; echoed in ``X-Request-Id``.
    request_id: str
    #: Id a client uses to group several requests; defaults to the request id.
    correlation_id: str

    def __post_init__(self) -> None:
        if not _is_trace_id(self.trace_id):
            raise ValueError("trace_id must be 32 lowercase hex digits, not all zero")
        if not _is_span_id(self.span_id):
            raise ValueError("span_id must be 16 lowercase hex digits, not all zero")
        if not (_is_safe_id(self.request_id) and _is_safe_id(self.correlation_id)):
            raise ValueError("request_id and correlation_id must be 1-128 characters of [A-Za-z0-9._:-]")

    @classmethod
    def new(cls) -> TraceContext:
        """Start a fresh trace with new ids."""
        request_id = _new_request_id()
        return cls(_new_trace_id(), _new_span_id(), request_id, request_id)

    @classmethod
    def from_http_headers(cls, headers: Mapping[str, str]) -> TraceContext:
        """Continue the caller's trace from ``traceparent``, ``X-Request-Id`` and ``X-Correlation-Id``.

        Header names are matched case-insensitively; anything invalid is ignored and generated instead.
        """
        return cls._continue(
            traceparent=_lookup(headers, "traceparent"),
            request_id=_lookup(headers, "x-request-id"),
            correlation_id=_lookup(headers, "x-correlation-id"),
        )

    @classmethod
    def from_message_headers(cls, headers: Mapping[str, Any]) -> TraceContext:
        """Continue the publisher's trace from AMQP headers (values may be ``bytes`` or ``str``)."""
        return cls._continue(
            traceparent=_as_text(_lookup(headers, "traceparent")),
            request_id=_as_text(_lookup(headers, "x-request-id")),
            correlation_id=_as_text(_lookup(headers, "x-correlation-id")),
        )

    @classmethod
    def _continue(
        cls, *, traceparent: str | None, request_id: str | None, correlation_id: str | None
    ) -> TraceContext:
        trace_id = _parse_traceparent(traceparent) or _new_trace_id()
        request = request_id if _is_safe_id(request_id) else _new_request_id()
        correlation = correlation_id if _is_safe_id(correlation_id) else request
        return cls(trace_id, _new_span_id(), request, correlation)

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` value naming this span as the parent of the next hop."""
        return f"00-{self.trace_id}-{self.span_id}-{_SAMPLED}"

    def to_message_headers(self) -> dict[str, str]:
        """Headers to put on a published message so its consumer continues this trace."""
        return {
            "traceparent": self.traceparent,
            "x-request-id": self.request_id,
            "x-correlation-id": self.correlation_id,
        }

    def child(self) -> TraceContext:
        """A new span in the same trace, keeping the request and correlation ids."""
        return TraceContext(self.trace_id, _new_span_id(), self.request_id, self.correlation_id)


def current_trace() -> TraceContext | None:
    """The trace context of the code running now, if one was set with ``use_trace``."""
    return _CURRENT.get()


def activate_trace(ctx: TraceContext) -> Token[TraceContext | None]:
    """Make ``ctx`` current for the rest of the running task (or until the returned token is reset).

    For an ``async for`` stream, whose next item decides the trace but cannot wrap the loop body in
    ``use_trace``. Each asyncio task has its own copy of the context, so other tasks are unaffected.
    """
    return _CURRENT.set(ctx)


@contextmanager
def use_trace(ctx: TraceContext) -> Iterator[TraceContext]:
    """Make ``ctx`` the current trace context inside the block; the previous one is restored after."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def _parse_traceparent(value: str | None) -> str | None:
    """Return the trace id of a valid ``traceparent``, or None (W3C Trace Context §4.3)."""
    if value is None:
        return None
    value = value.strip()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, _flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID:
        return None
    if version == "00" and len(value) != _TRACEPARENT_V00_LENGTH:
        return None
    # A later version may carry more fields, but only after a dash; we read the four we know.
    if len(value) > _TRACEPARENT_V00_LENGTH and value[_TRACEPARENT_V00_LENGTH] != "-":
        return None
    return trace_id


def _lookup(headers: Mapping[str, Any], name: str) -> Any:
    value = headers.get(name)
    # aiohttp's CIMultiDict already ignores case, so a miss there is final (no scan on every request);
    # plain dicts (AMQP headers, tests) are case-sensitive and are searched in any spelling.
    if value is not None or isinstance(headers, CIMultiDictProxy | CIMultiDict):
        return value
    for key, candidate in headers.items():
        if isinstance(key, str) and key.lower() == name:
            return candidate
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
    return None


def _is_trace_id(value: str) -> bool:
    return _TRACE_ID.fullmatch(value) is not None and value != _ZERO_TRACE_ID


def _is_span_id(value: str) -> bool:
    return _SPAN_ID.fullmatch(value) is not None and value != _ZERO_SPAN_ID


def _is_safe_id(value: str | None) -> TypeGuard[str]:
    return value is not None and _SAFE_ID.fullmatch(value) is not None


def _new_trace_id() -> str:
    trace_id = secrets.token_hex(16)
    # All zeros is the W3C "invalid" id; the odds are 2**-128, but the loop makes it impossible.
    while trace_id == _ZERO_TRACE_ID:
        trace_id = secrets.token_hex(16)
    return trace_id


def _new_span_id() -> str:
    span_id = secrets.token_hex(8)
    while span_id == _ZERO_SPAN_ID:
        span_id = secrets.token_hex(8)
    return span_id


def _new_request_id() -> str:
    return str(uuid.uuid4())

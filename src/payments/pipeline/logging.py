"""JSON logs with our ids on every line, and masking of personal data and secrets (DESIGN §8, §9).

``configure_logging`` is called once by the composition root. After it, every record that reaches the
root logger, ours or a library's, is written as one JSON object carrying ``timestamp``, ``level``,
``logger``, ``message``, ``service``, ``environment``, ``module``, ``requestId``, ``correlationId``,
``traceId``, ``userId``, ``paymentId`` and ``orderId`` (null when unknown) plus any ``extra`` fields.

The ids come from the current ``TraceContext`` and from ``log_context`` blocks, both held in context
variables, so concurrent requests and agents never see each other's ids. ``SensitiveDataFilter`` masks
emails, phone numbers, card numbers, bearer tokens and JWTs, passwords in URLs, secret-named keys and
every string registered with ``register_secret``; ``mask_text`` and ``mask_value`` are the pure parts.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Final, TextIO
from urllib.parse import quote, unquote, urlsplit

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from payments.pipeline.tracing import current_trace

#: The id fields every line carries, null when unknown.
ID_FIELDS: Final = ("requestId", "correlationId", "traceId", "userId", "paymentId", "orderId")
#: Fields that name our own identifiers; never pattern-masked, since a numeric gateway id
#: (Cashfree's payment ids are long numbers) would otherwise be mangled as a phone or card number.
_UNMASKED_FIELDS: Final = frozenset({*ID_FIELDS, "service", "environment", "module"})
#: Libraries that chat at INFO about every connection and channel.
_QUIET_LOGGERS: Final = ("aio_pika", "aiormq")
#: Libraries whose records must reach our handler rather than one of their own.
_LIBRARY_LOGGERS: Final = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aio_pika", "aiormq", "asyncpg")
#: Shorter "secrets" would mask ordinary words all over the logs while protecting nothing.
MIN_SECRET_LENGTH: Final = 4
_MASK: Final = "***"
#: Keys whose whole value is a credential (compared lowercased, with "-" read as "_").
_SENSITIVE_KEYS: Final = frozenset({"authorization", "proxy_authorization", "cookie", "set_cookie"})
#: ... and words that make any key a credential's: ``x-client-secret``, ``access_token``, ``db_password``.
_SENSITIVE_KEY_WORDS: Final = ("password", "passwd", "secret", "token", "api_key", "apikey")
#: Nested structures deeper than this are cut off instead of walked (and cycles end here).
_MAX_DEPTH: Final = 8

#: Record attribute where ``ContextFilter`` stamps the context fields.
_CONTEXT_ATTR: Final = "payments_context"
#: Record attribute that marks a record already masked by ``SensitiveDataFilter``.
_MASKED_ATTR: Final = "payments_masked"
_STANDARD_ATTRS: Final = frozenset({*RESERVED_ATTRS, "message", "asctime", _CONTEXT_ATTR, _MASKED_ATTR})

_BOUND: ContextVar[Mapping[str, str]] = ContextVar("payments_log_context", default=MappingProxyType({}))


# --- context -----------------------------------------------------------------------------------------


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields (e.g. ``userId``, ``paymentId``, ``module``) to every line logged inside the block.

    Nested blocks merge with the outer ones; a ``None`` value hides an outer field. The previous fields
    come back when the block exits.
    """
    merged = dict(_BOUND.get())
    for name, value in fields.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    token = _BOUND.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _BOUND.reset(token)


def context_fields() -> dict[str, str | None]:
    """The id fields of the code running now: the trace's ids, then the ``log_context`` fields."""
    fields: dict[str, str | None] = dict.fromkeys(ID_FIELDS)
    trace = current_trace()
    if trace is not None:
        fields["requestId"] = trace.request_id
        fields["correlationId"] = trace.correlation_id
        fields["traceId"] = trace.trace_id
    fields.update(_BOUND.get())
    return fields


class ContextFilter(logging.Filter):
    """Stamps each record with the context fields of the code that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Stamped here, in the caller's context, not in the formatter: a queued handler formats later.
        if not hasattr(record, _CONTEXT_ATTR):
            setattr(record, _CONTEXT_ATTR, context_fields())
        return True


# --- masking -------------------------------------------------------------------------------------------

# One alternation, so a line is scanned once. No repeat is nested in another, and none can match
# what follows it (unbounded ones end their branch), so no input makes the engine backtrack more than
# linearly; lookbehinds stop a match from starting inside a longer word or number.
_SENSITIVE = re.compile(
    r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/?#@]{0,256}:)(?P<url_password>[^\s/?#@]{1,256})(?=@)"
    r"|(?P<auth_scheme>\b(?i:bearer|basic)\s{1,5})(?P<auth_token>[A-Za-z0-9._~+/=-]{6,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*)"
    r"|(?P<key>(?i:password|passwd|secret|token|api[_-]?key)[\"']?\s{0,3}[:=]\s{0,3}[\"']?)"
    r"(?P<key_value>[^\s\"',;&}]{1,512})"
    r"|(?P<email_first>(?<![\w.%+-])[A-Za-z0-9])[A-Za-z0-9._%+-]{0,63}"
    r"@(?P<email_domain>[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8})\b"
    # A + number is international (E.164: up to 15 digits); without one, an Indian mobile number.
    r"|(?P<phone>(?<![\w+])\+(?:\d[ -]?){7,14}\d(?!\w)"
    r"|(?<![\w+])(?:0{0,2}91[ -]?|0)?[6-9]\d{4}[ -]?\d{5}(?!\w))"
    # Cards: 13-19 digits in a row, or grouped as printed (4-4-4-1..7, or Amex's 4-6-5).
    r"|(?P<card>(?<![\w+])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{5})(?!\w))"
)


class _SecretRegistry:
    """The exact strings to mask; registered at start-up, read on every log line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        #: Rebuilt on each change, so readers take one reference without locking.
        self.pattern: re.Pattern[str] | None = None

    def add(self, values: set[str]) -> None:
        with self._lock:
            self._values.update(value for value in values if len(value) >= MIN_SECRET_LENGTH)
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self.pattern = None


_SECRETS: Final = _SecretRegistry()


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in a log line from now on.

    For a URL only its password is registered (the rest names a host, which logs may show).
    Values shorter than ``MIN_SECRET_LENGTH`` are ignored.
    """
    _SECRETS.add(_secret_parts(value))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _SECRETS.clear()


def mask_text(text: str) -> str:
    """``text`` with registered secrets, credentials and personal data masked."""
    pattern = _SECRETS.pattern
    if pattern is not None:
        text = pattern.sub(_MASK, text)
    return _SENSITIVE.sub(_mask_match, text)


def mask_value(value: Any) -> Any:
    """``value`` with every string masked, recursively through mappings, lists, tuples and sets.

    Values under secret-named keys (``Authorization``, ``password``, ``x-client-secret`` ...) are
    replaced whole. Objects of other types are masked through their ``str()`` when that reveals anything.
    """
    return _mask_value(value, 0)


def is_sensitive_key(key: object) -> bool:
    """Whether a mapping key names a credential, so its whole value must be hidden."""
    if not isinstance(key, str):
        return False
    normalised = key.lower().replace("-", "_")
    return normalised in _SENSITIVE_KEYS or any(word in normalised for word in _SENSITIVE_KEY_WORDS)


def _mask_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, bool | float | dt.date | dt.time):
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        return _mask_container(value, depth) if depth < _MAX_DEPTH else "[too deep]"
    # An int may be a card or phone number; any other object reaches the log through its str().
    text = str(value)
    masked = mask_text(text)
    return value if masked == text else masked


def _mask_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int
) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _MASK if is_sensitive_key(key) else _mask_value(item, depth + 1)
            for key, item in value.items()
        }
    items = [_mask_value(item, depth + 1) for item in value]
    return tuple(items) if isinstance(value, tuple) else items


#: How each named group of ``_SENSITIVE`` is rewritten; the group is the match's last one.
_REPLACERS: Final[Mapping[str, Callable[[re.Match[str]], str]]] = {
    "url_password": lambda match: f"{match['url']}{_MASK}",
    "auth_token": lambda match: f"{match['auth_scheme']}{_MASK}",
    "jwt": lambda match: f"eyJ{_MASK}",
    "key_value": lambda match: f"{match['key']}{_MASK}",
    "email_domain": lambda match: f"{match['email_first']}{_MASK}@{match['email_domain']}",
    "phone": lambda match: _keep_last_digits(match[0], 3),
    "card": lambda match: _keep_last_digits(match[0], 4),
}


def _mask_match(match: re.Match[str]) -> str:
    replace = _REPLACERS.get(match.lastgroup or "")
    return replace(match) if replace is not None else match[0]


def _keep_last_digits(text: str, keep: int) -> str:
    """Replace every digit but the last ``keep`` with ``*``, keeping separators and ``+``."""
    digits = sum(char.isdigit() for char in text)
    hidden = digits - keep
    out = []
    for char in text:
        if char.isdigit() and hidden > 0:
            out.append("*")
            hidden -= 1
        else:
            out.append(char)
    return "".join(out)


def _secret_parts(value: str) -> set[str]:
    if "://" not in value:
        return {value} if value else set()
    try:
        password = urlsplit(value).password
    except ValueError:
        return {value}
    if not password:
        return set()
    # The URL holds the password percent-encoded; errors may show either form.
    return {password, unquote(password), quote(unquote(password), safe="")}


class SensitiveDataFilter(logging.Filter):
    """Masks the message, its arguments and every extra field of a record (see ``mask_value``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MASKED_ATTR, False):
            return True
        _mask_message(record)
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD_ATTRS and name not in _UNMASKED_FIELDS:
                setattr(record, name, _MASK if is_sensitive_key(name) else mask_value(value))
        bound = getattr(record, _CONTEXT_ATTR, None)
        if isinstance(bound, dict):
            for name, value in bound.items():
                if name not in _UNMASKED_FIELDS:
                    bound[name] = mask_value(value)
        setattr(record, _MASKED_ATTR, True)
        return True


def _mask_message(record: logging.LogRecord) -> None:
    if isinstance(record.msg, Mapping):
        record.msg = mask_value(record.msg)
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is the handler's to report, not ours to raise
        record.msg, record.args = mask_value(record.msg), mask_value(record.args)
        return
    # Masking the formatted message catches secrets inside any argument's str(), exceptions included.
    record.msg, record.args = mask_text(message), None


# --- formatting ----------------------------------------------------------------------------------------


class PaymentsJsonFormatter(JsonFormatter):
    """python-json-logger's formatter with our field names, order, ids and masked tracebacks."""

    def __init__(self, *, service: str, environment: str) -> None:
        super().__init__(reserved_attrs=sorted(_STANDARD_ATTRS))
        self._static = {"service": service, "environment": environment}

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        bound = getattr(record, _CONTEXT_ATTR, None)
        fields = dict(bound) if isinstance(bound, dict) else context_fields()
        log_data["timestamp"] = _iso_utc(record.created)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(self._static)
        log_data["module"] = fields.pop("module", None) or record.name
        log_data.update(fields)
        super().add_fields(log_data, record, message_dict)

    def formatException(self, ei: Any) -> str:
        return mask_text(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return mask_text(str(super().formatStack(stack_info)))


def _iso_utc(created: float) -> str:
    moment = dt.datetime.fromtimestamp(created, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _PaymentsHandler(logging.StreamHandler[TextIO]):
    """Our root handler; its own class so a second ``configure_logging`` replaces it."""


def configure_logging(*, level: str, service: str, environment: str, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (default stderr) as masked JSON carrying our ids.

    Safe to call again (tests, the CLI): the handler installed by a previous call is replaced, and
    handlers that others put on the root logger are left alone.
    """
    handler = _PaymentsHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(SensitiveDataFilter())
    handler.setFormatter(PaymentsJsonFormatter(service=service, environment=environment))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _PaymentsHandler)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).propagate = True
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)

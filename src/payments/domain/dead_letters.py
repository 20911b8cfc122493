"""Dead-lettered messages: what an operator sees of them, and moving them back (issue 5 §4).

Each work queue ``Q`` has a dead-letter queue ``Q.dlq`` (DESIGN §3). A message gets there in one of two
ways, and its headers say which:

- the runtime moved it after its last failure, or at once for input retrying cannot fix: it carries
  ``x-retry-count``, ``x-first-failure-at``, ``x-last-error``, ``x-dead-letter-reason`` and
  ``x-original-queue``;
- the broker moved it when the work queue's delivery limit stopped a crash loop: it carries the
  broker's own ``x-death`` list (newest first) and ``x-first-death-reason``.

``DeadLetters`` lets an operator browse a DLQ without disturbing it and re-drive messages to their work
queue with a clean failure history, so they get a fresh set of retries. The pure functions below read
the headers and build the re-driven headers; the RabbitMQ bridge and the in-memory fake share them.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol, TypeAlias

from payments.domain.errors import DependencyUnavailable, NotFound

# The header names the runtime writes (``pipeline/runtime.py`` and ``pipeline/stream.py`` own them; the
# domain may not import the pipeline, so a unit test holds the two spellings together).
#: Failures so far.
FAILURES_HEADER: Final = "x-retry-count"
#: ISO 8601 time of the first failure.
FIRST_FAILURE_HEADER: Final = "x-first-failure-at"
#: ``ErrorType: text`` of the last failure, already masked.
LAST_ERROR_HEADER: Final = "x-last-error"
#: Why the runtime dead-lettered it: ``exhausted``, ``invalid_payload``, ``illegal_transition`` ...
DEAD_LETTER_REASON_HEADER: Final = "x-dead-letter-reason"
#: The work queue the runtime took it from.
ORIGINAL_QUEUE_HEADER: Final = "x-original-queue"
#: When the message was last re-driven, ISO 8601.
REDRIVEN_AT_HEADER: Final = "x-redriven-at"
#: How many times the message has been re-driven; kept across re-drives.
REDRIVE_COUNT_HEADER: Final = "x-redrive-count"

#: The broker's dead-letter and redelivery bookkeeping (``x-last-death-*`` appears from RabbitMQ 3.13).
BROKER_HEADERS: Final = frozenset(
    {
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)
#: What a re-drive clears so the message starts over with a full set of retries.
HISTORY_HEADERS: Final = frozenset(
    {
        FAILURES_HEADER,
        FIRST_FAILURE_HEADER,
        LAST_ERROR_HEADER,
        DEAD_LETTER_REASON_HEADER,
        ORIGINAL_QUEUE_HEADER,
        *BROKER_HEADERS,
    }
)
#: Bytes of a body shown when browsing; enough to recognise a webhook, small enough for a page of 50.
BODY_PREVIEW_BYTES: Final = 2048

#: A header value we publish; AMQP field tables carry these types as they are.
HeaderValue: TypeAlias = str | int | float | bool | None


class DeadLetteredBy(StrEnum):
    RUNTIME = "runtime"  #: the runtime, after the last retry or for input that can never succeed
    BROKER = "broker"  #: RabbitMQ, when the work queue's delivery limit stopped a crash loop


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """One message in a dead-letter queue, as an operator reads it."""

    message_id: str | None
    #: The work queue the message belongs to (not its DLQ).
    queue: str
    #: The key it was first published with when the publisher recorded it (our publishers set the
    #: AMQP ``type`` to it), else what the broker's ``x-death`` kept, else the key it reached the DLQ by.
    routing_key: str
    #: The first ``BODY_PREVIEW_BYTES`` of the body as UTF-8, undecodable bytes replaced.
    body_preview: str
    body_size: int
    #: Every header, each value as text (tables and lists as JSON).
    headers: Mapping[str, str]
    #: Failures the runtime counted; 0 when it never saw one (a crash loop shows in ``x-death``).
    failures: int
    first_failed_at: datetime | None
    last_error: str | None
    #: The runtime's ``x-dead-letter-reason``, or the broker's (``delivery_limit``).
    reason: str | None
    dead_lettered_by: DeadLetteredBy


class UnknownDeadLetterQueue(NotFound):
    """There is no dead-letter queue for that queue."""

    code = "unknown_queue"


class DeadLetterNotFound(NotFound):
    """That message is not in the dead-letter queue."""

    code = "dead_letter_not_found"


class RedriveInterrupted(DependencyUnavailable):
    """The re-drive stopped part way: the broker did not take a message back."""

    code = "redrive_interrupted"

    def __init__(self, message: str | None = None, *, moved: int) -> None:
        super().__init__(message)
        #: Messages moved before it stopped; the one that failed and all after it are still in the DLQ.
        self.moved = moved


class DeadLetters(Protocol):
    """The dead-letter queues of the work queues, for operators.

    Unknown queue names raise ``UnknownDeadLetterQueue``; an unreachable broker raises
    ``DependencyUnavailable``.
    """

    def queues(self) -> tuple[str, ...]:
        """The work queues whose DLQs this covers, in a stable order."""
        ...

    async def count(self, queue: str) -> int:
        """Messages waiting in ``queue``'s DLQ (not those someone holds at this moment)."""
        ...

    async def list(self, queue: str, *, limit: int) -> builtins.list[DeadLetter]:
        """Up to ``limit`` messages from the head of ``queue``'s DLQ, oldest first.

        Browsing loses nothing and leaves the messages where they were, in the same order.
        """
        ...

    async def redrive(self, queue: str, *, message_id: str | None) -> int:
        """Move the message ``message_id`` (or, with None, every message) back to ``queue``; how many moved.

        Each one is published to the work queue with its history cleared (``HISTORY_HEADERS``) and
        ``x-redrive-count`` raised, and is removed from the DLQ only once the broker confirmed that
        publish. Raises ``DeadLetterNotFound`` when ``message_id`` is not there, and
        ``RedriveInterrupted`` (carrying how many moved) when a publish is not confirmed: that message
        and the rest stay in the DLQ.
        """
        ...


def read_dead_letter(
    *,
    queue: str,
    message_id: str | None,
    routing_key: str,
    message_type: str | None,
    body: bytes,
    headers: Mapping[str, Any],
) -> DeadLetter:
    """Describe a dead-lettered message of work queue ``queue`` from its properties and headers."""
    deaths = _deaths(headers)
    runtime_reason = _text(headers.get(DEAD_LETTER_REASON_HEADER))
    by_broker = runtime_reason is None and (bool(deaths) or "x-first-death-reason" in headers)
    return DeadLetter(
        message_id=message_id or None,
        queue=queue,
        routing_key=message_type or _first_death_key(deaths) or routing_key,
        body_preview=body[:BODY_PREVIEW_BYTES].decode("utf-8", "replace"),
        body_size=len(body),
        headers={str(name): header_text(value) for name, value in headers.items()},
        failures=_count(headers.get(FAILURES_HEADER)),
        first_failed_at=_moment(headers.get(FIRST_FAILURE_HEADER)) or _last_death_time(deaths),
        last_error=_text(headers.get(LAST_ERROR_HEADER)),
        reason=_broker_reason(headers, deaths) if by_broker else runtime_reason,
        dead_lettered_by=DeadLetteredBy.BROKER if by_broker else DeadLetteredBy.RUNTIME,
    )


def redrive_headers(headers: Mapping[str, Any], *, now: datetime) -> dict[str, HeaderValue]:
    """The headers a re-driven message is published with: no failure history, one more re-drive.

    Everything else (trace ids, the webhook's own headers) is kept as it was.
    """
    kept: dict[str, HeaderValue] = {
        str(name): _plain(value) for name, value in headers.items() if name not in HISTORY_HEADERS
    }
    kept[REDRIVE_COUNT_HEADER] = _count(headers.get(REDRIVE_COUNT_HEADER)) + 1
    kept[REDRIVEN_AT_HEADER] = now.astimezone(UTC).isoformat()
    return kept


def header_text(value: Any) -> str:
    """A header value as text: strings as they are, bytes decoded, tables and lists as JSON."""
    plain = _plain_nested(value)
    return plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True)


def _plain(value: Any) -> HeaderValue:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return header_text(value)


def _plain_nested(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain_nested(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_nested(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _deaths(headers: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    deaths = headers.get("x-death")
    if not isinstance(deaths, list | tuple):
        return ()
    return [death for death in deaths if isinstance(death, Mapping)]


def _broker_reason(headers: Mapping[str, Any], deaths: Sequence[Mapping[str, Any]]) -> str | None:
    # x-death is newest first; x-first-death-reason is the very first dead-lettering, which for a message
    # that waited in a retry tier is that tier's "expired", not the delivery limit that sent it here.
    latest = _text(headers.get("x-last-death-reason"))
    if latest is None and deaths:
        latest = _text(deaths[0].get("reason"))
    return latest or _text(headers.get("x-first-death-reason"))


def _first_death_key(deaths: Sequence[Mapping[str, Any]]) -> str | None:
    if not deaths:
        return None
    keys = deaths[-1].get("routing-keys")
    return _text(keys[0]) if isinstance(keys, list | tuple) and keys else None


def _last_death_time(deaths: Sequence[Mapping[str, Any]]) -> datetime | None:
    return _moment(deaths[0].get("time")) if deaths else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    text = _text(value)
    return int(text) if text is not None and text.isdigit() else 0


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    text = _text(value)
    if text is None:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def _utc(moment: datetime) -> datetime:
    # AMQP timestamps carry no zone and mean UTC; a naive datetime here is one of those.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

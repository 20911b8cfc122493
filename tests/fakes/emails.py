"""An in-memory ``EmailLog`` with ``PgEmailLog``'s rules, and a mail server that records what it is sent.

Like the ``emails`` table: one email per id and one per (event, kind, recipient), recipients compared
as the keyed hash compares them (case and surrounding spaces ignored); status changes are guarded by
the same transition table (SENT is final); writes are visible to others only after commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from payments.bridges.postgres.pii import normalise
from payments.domain.errors import NotFound
from payments.domain.notification.model import EmailRecord, EmailStatus, EmailTrigger, sources_of
from payments.domain.notification.sending import EmailMessage

#: ``last_error`` is bounded as the column is.
MAX_ERROR_LENGTH = 1000


@dataclass
class EmailTables:
    """The committed emails every unit of work shares."""

    emails: dict[str, EmailRecord] = field(default_factory=dict)


class InMemoryEmailLog:
    def __init__(self, tables: EmailTables) -> None:
        self._tables = tables
        self._staged: dict[str, EmailRecord] = {}

    async def begin(self, record: EmailRecord) -> EmailRecord:
        visible = self._visible()
        if record.email_id in visible:
            return visible[record.email_id]
        key = _key(record)
        for known in visible.values():
            if _key(known) == key:
                return known
        stored = replace(
            record,
            status=EmailStatus.PENDING,
            attempts=0,
            provider_message_id=None,
            last_error=None,
            updated_at=record.created_at,
            sent_at=None,
        )
        self._staged[record.email_id] = stored
        return stored

    async def attempt_failed(self, email_id: str, *, error: str, now: datetime) -> bool:
        return self._move(
            email_id, EmailTrigger.ATTEMPT_FAILED, now, status=EmailStatus.PENDING, last_error=error
        )

    async def sent(self, email_id: str, *, provider_message_id: str, now: datetime) -> bool:
        return self._move(
            email_id,
            EmailTrigger.SENT,
            now,
            status=EmailStatus.SENT,
            provider_message_id=provider_message_id,
            sent_at=now,
        )

    async def gave_up(self, email_id: str, *, error: str, now: datetime) -> bool:
        return self._move(email_id, EmailTrigger.GAVE_UP, now, status=EmailStatus.FAILED, last_error=error)

    async def for_event(self, event_id: str) -> Sequence[EmailRecord]:
        mine = [record for record in self._visible().values() if record.event_id == event_id]
        return sorted(mine, key=lambda record: (record.created_at, record.email_id))

    def commit(self) -> None:
        self._tables.emails.update(self._staged)
        self._staged.clear()

    def _move(
        self,
        email_id: str,
        trigger: EmailTrigger,
        now: datetime,
        *,
        status: EmailStatus,
        last_error: str | None = None,
        **changes: object,
    ) -> bool:
        current = self._visible().get(email_id)
        if current is None:
            raise NotFound(f"email {email_id} not found")
        if current.status not in sources_of(trigger):
            return False
        error = current.last_error if last_error is None else last_error[:MAX_ERROR_LENGTH]
        self._staged[email_id] = replace(
            current,
            status=status,
            attempts=current.attempts + 1,
            last_error=error,
            updated_at=now,
            **changes,  # type: ignore[arg-type]
        )
        return True

    def _visible(self) -> dict[str, EmailRecord]:
        return {**self._tables.emails, **self._staged}


def _key(record: EmailRecord) -> tuple[str, str, str]:
    return (record.event_id, record.kind.value, normalise(record.recipient, kind="email"))


class RecordingMailer:
    """An ``EmailSender`` that keeps every message it takes, and fails on cue.

    ``fail_next(*errors)`` raises those errors, one per send, before taking messages again; its
    answer to a message it takes is a queue id, as the SMTP sink's is.
    """

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.tries = 0
        self._failures: deque[Exception] = deque()

    def fail_next(self, *errors: Exception) -> None:
        self._failures.extend(errors)

    async def send(self, message: EmailMessage) -> str:
        self.tries += 1
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(message)
        return f"OK queued as fake-{len(self.sent)}"

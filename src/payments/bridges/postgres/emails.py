"""The ``emails`` table (``EmailLog``): every email, its status and tries.

The recipient is sealed by ``PiiCipher`` before it reaches a statement and opened after a row is read;
the UNIQUE key matches recipients by their keyed hash. Status changes are guarded in SQL: the UPDATE
names the states its trigger may leave (SENT is final).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import Connection
from payments.domain.errors import NotFound
from payments.domain.notification.model import EmailKind, EmailRecord, EmailStatus, EmailTrigger, sources_of

#: The column a recipient's ciphertext is bound to (the cipher's associated data).
RECIPIENT_COLUMN: Final = "emails.recipient"

_COLUMNS: Final = """
    email_id, event_id, kind, template, recipient_sealed, recipient_key_id, subject, status, attempts,
    provider_message_id, last_error, created_at, updated_at, sent_at
"""

#: Record an email about to be sent and return it; one that exists (same id, or same event, kind and
#: recipient) stays, and no row comes back.
INSERT_EMAIL: Final = f"""
INSERT INTO emails (
    email_id, event_id, kind, template, recipient_sealed, recipient_key_id, recipient_hash, subject,
    status, attempts, created_at, updated_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PENDING', 0, $9, $9)
ON CONFLICT DO NOTHING
RETURNING {_COLUMNS}
"""  # noqa: S608

#: One email by id.
SELECT_EMAIL: Final = f"SELECT {_COLUMNS} FROM emails WHERE email_id = $1"  # noqa: S608
#: The stored email of one event, kind and recipient (``begin`` when another id holds that key).
SELECT_EMAIL_BY_KEY: Final = f"""
SELECT {_COLUMNS} FROM emails WHERE event_id = $1 AND kind = $2 AND recipient_hash = $3
"""  # noqa: S608
#: The emails one message asked for, oldest first.
SELECT_FOR_EVENT: Final = f"""
SELECT {_COLUMNS} FROM emails WHERE event_id = $1 ORDER BY created_at, email_id
"""  # noqa: S608

#: A failed try that will be retried: still (again) PENDING, one more attempt, the error kept.
UPDATE_ATTEMPT_FAILED: Final = """
UPDATE emails SET status = 'PENDING', attempts = attempts + 1, last_error = $3, updated_at = $4
WHERE email_id = $1 AND status = ANY($2::text[])
"""
#: The mail server took it.
UPDATE_SENT: Final = """
UPDATE emails
SET status = 'SENT', attempts = attempts + 1, provider_message_id = $3, sent_at = $4, updated_at = $4
WHERE email_id = $1 AND status = ANY($2::text[])
"""
#: Given up: refused for good, or the last retry failed.
UPDATE_GAVE_UP: Final = """
UPDATE emails SET status = 'FAILED', attempts = attempts + 1, last_error = $3, updated_at = $4
WHERE email_id = $1 AND status = ANY($2::text[])
"""
#: Whether an email exists (an UPDATE that changed nothing: SENT already, or no such email).
EMAIL_EXISTS: Final = "SELECT EXISTS (SELECT 1 FROM emails WHERE email_id = $1)"

#: ``last_error`` is bounded by the table; longer texts are cut.
MAX_ERROR_LENGTH: Final = 1000


class PgEmailLog:
    def __init__(self, connection: Connection, cipher: PiiCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    async def begin(self, record: EmailRecord) -> EmailRecord:
        recipient_hash = self._cipher.lookup_hash(record.recipient, kind="email")
        sealed = self._cipher.seal(record.recipient, column=RECIPIENT_COLUMN)
        row = await self._connection.fetchrow(
            INSERT_EMAIL,
            record.email_id,
            record.event_id,
            record.kind.value,
            record.template,
            sealed.ciphertext,
            sealed.key_id,
            recipient_hash,
            record.subject,
            record.created_at,
        )
        if row is None:
            # Recorded before. Read in a statement of its own: its snapshot sees the row another
            # transaction committed while our INSERT waited on it.
            row = await self._connection.fetchrow(SELECT_EMAIL, record.email_id)
        if row is None:  # the same event, kind and recipient under another id (another digest key)
            row = await self._connection.fetchrow(
                SELECT_EMAIL_BY_KEY, record.event_id, record.kind.value, recipient_hash
            )
        if row is None:
            raise NotFound(f"email {record.email_id} was neither inserted nor found")
        return self._record(row)

    async def attempt_failed(self, email_id: str, *, error: str, now: datetime) -> bool:
        return await self._update(
            UPDATE_ATTEMPT_FAILED, email_id, EmailTrigger.ATTEMPT_FAILED, error[:MAX_ERROR_LENGTH], now
        )

    async def sent(self, email_id: str, *, provider_message_id: str, now: datetime) -> bool:
        return await self._update(UPDATE_SENT, email_id, EmailTrigger.SENT, provider_message_id, now)

    async def gave_up(self, email_id: str, *, error: str, now: datetime) -> bool:
        return await self._update(
            UPDATE_GAVE_UP, email_id, EmailTrigger.GAVE_UP, error[:MAX_ERROR_LENGTH], now
        )

    async def for_event(self, event_id: str) -> Sequence[EmailRecord]:
        rows = await self._connection.fetch(SELECT_FOR_EVENT, event_id)
        return [self._record(row) for row in rows]

    async def _update(self, query: str, email_id: str, trigger: EmailTrigger, *values: object) -> bool:
        allowed = sorted(state.value for state in sources_of(trigger))
        status = await self._connection.execute(query, email_id, allowed, *values)
        if status == "UPDATE 1":
            return True
        if not await self._connection.fetchval(EMAIL_EXISTS, email_id):
            raise NotFound(f"email {email_id} not found")
        return False  # SENT already: final

    def _record(self, row: asyncpg.Record) -> EmailRecord:
        return EmailRecord(
            email_id=row["email_id"],
            event_id=row["event_id"],
            kind=EmailKind(row["kind"]),
            template=row["template"],
            recipient=self._cipher.open(
                row["recipient_sealed"], key_id=row["recipient_key_id"], column=RECIPIENT_COLUMN
            ),
            subject=row["subject"],
            status=EmailStatus(row["status"]),
            attempts=row["attempts"],
            provider_message_id=row["provider_message_id"],
            last_error=row["last_error"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            sent_at=row["sent_at"],
        )

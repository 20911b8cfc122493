"""The append-only, hash-chained audit log (DESIGN §5.6) on PostgreSQL.

Each row stores ``hash = sha256(canonical JSON of prev_hash and the row's fields)`` and the previous
row's hash in ``prev_hash``, so editing, deleting or inserting a row in the middle breaks the chain
at that row. (Removing the newest rows cannot be seen from the chain alone; the database trigger
refuses UPDATE, DELETE and TRUNCATE, and backups keep the head.)

The JSON states are hashed as read back from jsonb, not as given: jsonb normalises key order, spacing
and numbers, so hashing the caller's dict would not survive the round trip.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

import asyncpg

from payments.bridges.postgres.json_values import canonical_json, from_json, to_json
from payments.bridges.postgres.pool import Connection
from payments.domain.audit.model import AuditEntry, ChainVerification

#: Key of the transaction-scoped advisory lock that makes appends form one linear chain.
#: The value is the ASCII of "auditlog" read as a big-endian integer: fixed, and unlikely to collide.
AUDIT_CHAIN_LOCK_KEY: Final = 0x6175_6469_746C_6F67

#: Serialise appenders until our transaction ends. Without it two transactions could read the same
#: latest hash and both link to it, forking the chain. The cost: every audited transaction waits for
#: the previous one to commit, so append should be the last write of a transaction (keep it short).
LOCK_CHAIN: Final = "SELECT pg_advisory_xact_lock($1)"

#: The head of the chain plus our states as jsonb will store them. A separate statement from LOCK_CHAIN
#: on purpose: a statement's snapshot is taken when it starts, so reading the head in the same
#: statement that waited for the lock would miss the row the previous holder just committed.
READ_HEAD_AND_NORMALISE: Final = """
SELECT (SELECT hash FROM audit_logs ORDER BY id DESC LIMIT 1) AS prev_hash,
       $1::text::jsonb::text AS before_state,
       $2::text::jsonb::text AS after_state
"""

#: Append one row (the only write this table accepts).
INSERT_ENTRY: Final = """
INSERT INTO audit_logs (
    actor_id, action, resource_type, resource_id, before_state, after_state,
    ip_address, user_agent, trace_id, request_id, created_at, prev_hash, hash
)
VALUES ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7, $8, $9, $10, $11, $12, $13)
"""

#: The whole chain in order, states as jsonb text, for verification.
SELECT_CHAIN: Final = """
SELECT id, actor_id, action, resource_type, resource_id,
       before_state::text AS before_state, after_state::text AS after_state,
       ip_address, user_agent, trace_id, request_id, created_at, prev_hash, hash
FROM audit_logs
ORDER BY id
"""

#: Rows fetched per round trip while verifying.
VERIFY_PREFETCH: Final = 500


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(prev_hash: str | None, entry: AuditEntry) -> str:
    """The hash of a row: SHA-256 (hex) of the canonical JSON of ``prev_hash`` and every field.

    ``entry``'s states must be as read back from storage (see ``json_values.from_json``); the
    timestamp is written in UTC with microseconds, which is exactly what timestamptz keeps.
    """
    document = {
        "prev_hash": prev_hash,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_id": entry.resource_id,
        "before_state": entry.before_state,
        "after_state": entry.after_state,
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "trace_id": entry.trace_id,
        "request_id": entry.request_id,
        "created_at": _timestamp(entry.created_at),
    }
    return hashlib.sha256(canonical_json(document).encode("ascii")).hexdigest()


def link_is_intact(
    *, expected_prev: str | None, prev_hash: str | None, stored: str, entry: AuditEntry
) -> bool:
    """Whether a stored row links to its predecessor and its hash matches its content."""
    return prev_hash == expected_prev and chain_hash(prev_hash, entry) == stored


def _nullable_json(state: object) -> str | None:
    return None if state is None else to_json(state)


def _entry_from_row(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        actor_id=row["actor_id"],
        action=row["action"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        before_state=from_json(row["before_state"]),
        after_state=from_json(row["after_state"]),
        ip_address=row["ip_address"],
        user_agent=row["user_agent"],
        trace_id=row["trace_id"],
        request_id=row["request_id"],
        created_at=row["created_at"],
    )


class PgAuditLog:
    """The ``AuditLog`` on PostgreSQL; rows commit or roll back with the caller's transaction."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def append(self, entry: AuditEntry) -> None:
        """Append ``entry`` linked to the newest row; call it last in the transaction (see LOCK_CHAIN)."""
        _timestamp(entry.created_at)  # refuse a naive timestamp before taking the lock
        if self._connection.is_in_transaction():
            await self._append(entry)
            return
        # Outside a transaction the advisory lock would end with its own statement.
        async with self._connection.transaction():
            await self._append(entry)

    async def _append(self, entry: AuditEntry) -> None:
        await self._connection.execute(LOCK_CHAIN, AUDIT_CHAIN_LOCK_KEY)
        head = await self._connection.fetchrow(
            READ_HEAD_AND_NORMALISE, _nullable_json(entry.before_state), _nullable_json(entry.after_state)
        )
        assert head is not None  # SELECT without FROM always returns one row
        stored = replace(
            entry, before_state=from_json(head["before_state"]), after_state=from_json(head["after_state"])
        )
        await self._connection.execute(
            INSERT_ENTRY,
            entry.actor_id,
            entry.action,
            entry.resource_type,
            entry.resource_id,
            head["before_state"],
            head["after_state"],
            entry.ip_address,
            entry.user_agent,
            entry.trace_id,
            entry.request_id,
            entry.created_at,
            head["prev_hash"],
            chain_hash(head["prev_hash"], stored),
        )

    async def verify_chain(self) -> ChainVerification:
        """Re-compute every hash in id order; report the first row whose hash or link does not match."""
        if self._connection.is_in_transaction():
            return await self._verify()
        # A cursor needs a transaction; REPEATABLE READ checks one consistent snapshot of the chain.
        async with self._connection.transaction(isolation="repeatable_read", readonly=True):
            return await self._verify()

    async def _verify(self) -> ChainVerification:
        checked = 0
        expected_prev: str | None = None
        async for row in self._connection.cursor(SELECT_CHAIN, prefetch=VERIFY_PREFETCH):
            checked += 1
            intact = link_is_intact(
                expected_prev=expected_prev,
                prev_hash=row["prev_hash"],
                stored=row["hash"],
                entry=_entry_from_row(row),
            )
            if not intact:
                return ChainVerification(checked=checked, first_broken_id=row["id"])
            expected_prev = row["hash"]
        return ChainVerification(checked=checked, first_broken_id=None)

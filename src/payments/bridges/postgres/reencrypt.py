"""Key rotation for personal data at rest: seal every row again under the current key.

The sealed tables: ``payments`` (customer name, email, phone), ``emails`` (recipient) and
``webhook_logs`` (the body, which names the customer; rows from before migration 0015 hold it in
plain text until this seals it).

After ``PAYMENT_ENCRYPTION_KEY`` is replaced (the old key moved to ``PAYMENT_ENCRYPTION_PREVIOUS_KEYS``),
rows sealed under the old key still open, but their look-up hashes were made with the old key's hash
key. ``reencrypt`` walks the sealed tables in batches, each batch one transaction: it opens each row
with whichever configured key sealed it, seals it again under the current key and recomputes its
look-up hash, so that after it the old key can be dropped. Rows another transaction holds are skipped
(``SKIP LOCKED``) and picked up by the next pass; the run reports how many rows remain under old keys.

The same transaction updates the ciphertexts, hashes and key id of a row, so a crash leaves each row
wholly old or wholly new. Running it again is harmless: rows already under the current key are not
selected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

import asyncpg

from payments.bridges.postgres.emails import RECIPIENT_COLUMN
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import Connection
from payments.bridges.postgres.webhook_logs import RAW_BODY_COLUMN

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
#: One batch in one transaction: how many rows it sealed again (0 when none is left to take).
_Batch = Callable[[Connection], Awaitable[int]]

#: Payments whose customer fields are sealed under another key than the current one.
SELECT_STALE_PAYMENTS: Final = """
SELECT payment_id, encryption_key_id,
       customer_email_ciphertext, customer_phone_ciphertext, customer_name_ciphertext
  FROM payments
 WHERE encryption_key_id IS DISTINCT FROM $1 AND customer_phone_ciphertext IS NOT NULL
 ORDER BY payment_id
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""
UPDATE_PAYMENT: Final = """
UPDATE payments
   SET customer_email_ciphertext = $2, customer_email_hash = $3,
       customer_phone_ciphertext = $4, customer_phone_hash = $5,
       customer_name_ciphertext = $6, encryption_key_id = $7
 WHERE payment_id = $1
"""
COUNT_STALE_PAYMENTS: Final = """
SELECT count(*) FROM payments
 WHERE encryption_key_id IS DISTINCT FROM $1 AND customer_phone_ciphertext IS NOT NULL
"""

SELECT_STALE_EMAILS: Final = """
SELECT email_id, recipient_sealed, recipient_key_id
  FROM emails
 WHERE recipient_key_id <> $1
 ORDER BY email_id
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""
UPDATE_EMAIL: Final = """
UPDATE emails SET recipient_sealed = $2, recipient_hash = $3, recipient_key_id = $4 WHERE email_id = $1
"""
COUNT_STALE_EMAILS: Final = "SELECT count(*) FROM emails WHERE recipient_key_id <> $1"


#: Webhook bodies still in plain text (written before migration 0015) or sealed under an old key.
SELECT_STALE_WEBHOOKS: Final = """
SELECT id, raw_body, raw_body_sealed, raw_body_key_id
  FROM webhook_logs
 WHERE raw_body IS NOT NULL OR raw_body_key_id <> $1
 ORDER BY id
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""
UPDATE_WEBHOOK: Final = """
UPDATE webhook_logs SET raw_body = NULL, raw_body_sealed = $2, raw_body_key_id = $3 WHERE id = $1
"""
COUNT_STALE_WEBHOOKS: Final = """
SELECT count(*) FROM webhook_logs WHERE raw_body IS NOT NULL OR raw_body_key_id <> $1
"""


@dataclass(frozen=True)
class Reencrypted:
    """What a run did: rows sealed again per table, and rows still under an old key afterwards."""

    payments: int
    emails: int
    webhooks: int
    remaining: int


async def reencrypt(pool: Pool, cipher: PiiCipher, *, batch_size: int = 500) -> Reencrypted:
    """Seal every payment's customer fields and every email's recipient under the current key."""
    payments = await _in_batches(pool, lambda c: _payments_batch(c, cipher, batch_size))
    emails = await _in_batches(pool, lambda c: _emails_batch(c, cipher, batch_size))
    webhooks = await _in_batches(pool, lambda c: _webhooks_batch(c, cipher, batch_size))
    async with pool.acquire() as connection:
        remaining = 0
        for count in (COUNT_STALE_PAYMENTS, COUNT_STALE_EMAILS, COUNT_STALE_WEBHOOKS):
            remaining += int(await connection.fetchval(count, cipher.key_id))
    return Reencrypted(payments=payments, emails=emails, webhooks=webhooks, remaining=remaining)


async def _in_batches(pool: Pool, batch: _Batch) -> int:
    total = 0
    while True:
        async with pool.acquire() as connection, connection.transaction():
            done = await batch(connection)
        total += done
        if done == 0:
            return total


async def _payments_batch(connection: Connection, cipher: PiiCipher, limit: int) -> int:
    rows = await connection.fetch(SELECT_STALE_PAYMENTS, cipher.key_id, limit)
    for row in rows:
        key_id = row["encryption_key_id"]
        email = _open(cipher, row["customer_email_ciphertext"], key_id, "customer_email")
        phone = _open(cipher, row["customer_phone_ciphertext"], key_id, "customer_phone")
        name = _open(cipher, row["customer_name_ciphertext"], key_id, "customer_name")
        await connection.execute(
            UPDATE_PAYMENT,
            row["payment_id"],
            _seal(cipher, email, "customer_email"),
            cipher.lookup_hash(email, kind="email") if email is not None else None,
            _seal(cipher, phone, "customer_phone"),
            cipher.lookup_hash(phone, kind="phone") if phone is not None else None,
            _seal(cipher, name, "customer_name"),
            cipher.key_id,
        )
    return len(rows)


async def _emails_batch(connection: Connection, cipher: PiiCipher, limit: int) -> int:
    rows = await connection.fetch(SELECT_STALE_EMAILS, cipher.key_id, limit)
    for row in rows:
        recipient = cipher.open(
            row["recipient_sealed"], key_id=row["recipient_key_id"], column=RECIPIENT_COLUMN
        )
        sealed = cipher.seal(recipient, column=RECIPIENT_COLUMN)
        recipient_hash = cipher.lookup_hash(recipient, kind="email")
        await connection.execute(
            UPDATE_EMAIL, row["email_id"], sealed.ciphertext, recipient_hash, sealed.key_id
        )
    return len(rows)


async def _webhooks_batch(connection: Connection, cipher: PiiCipher, limit: int) -> int:
    rows = await connection.fetch(SELECT_STALE_WEBHOOKS, cipher.key_id, limit)
    for row in rows:
        body = row["raw_body"]
        if body is None:
            body = cipher.open(row["raw_body_sealed"], key_id=row["raw_body_key_id"], column=RAW_BODY_COLUMN)
        sealed = cipher.seal(body, column=RAW_BODY_COLUMN)
        await connection.execute(UPDATE_WEBHOOK, row["id"], sealed.ciphertext, sealed.key_id)
    return len(rows)


def _open(cipher: PiiCipher, sealed: bytes | None, key_id: str, column: str) -> str | None:
    return None if sealed is None else cipher.open(sealed, key_id=key_id, column=column)


def _seal(cipher: PiiCipher, value: str | None, column: str) -> bytes | None:
    return None if value is None else cipher.seal(value, column=column).ciphertext

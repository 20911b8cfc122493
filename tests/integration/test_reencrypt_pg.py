"""Key rotation on a database of its own: every sealed row moves to the new key, and its look-up
hash with it, so the old key can be dropped; a second run finds nothing to do."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

import asyncpg
import pytest

from payments.bridges.postgres.migrate import ensure_database, migrate
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.pool import open_pool
from payments.bridges.postgres.reencrypt import reencrypt
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from payments.domain.payment.model import CustomerDetails
from tests.contracts_emails import an_email, begun
from tests.contracts_payments import new_payment
from tests.contracts_webhook_logs import delivery

pytestmark = pytest.mark.integration

OLD, NEW = os.urandom(32), os.urandom(32)


@pytest.fixture
async def own_pool(scratch_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    await ensure_database(scratch_dsn)
    await migrate(scratch_dsn)
    async with open_pool(scratch_dsn, min_size=1, max_size=4, command_timeout=30.0) as pool:
        yield pool


async def stored_under_the_old_key(pool: asyncpg.Pool, count: int) -> list[str]:
    old = partial(pg_unit_of_work, pool, cipher=PiiCipher(OLD))
    payment_ids = []
    for n in range(count):
        customer = CustomerDetails(name=f"Asha {n}", email=f"asha{n}@example.com", phone=f"98765432{n:02d}")
        payment = replace(new_payment(), customer=customer)
        async with old() as uow:
            await uow.payments.add(payment)
        await begun(old, an_email(recipient=f"asha{n}@example.com"))
        async with old() as uow:
            await uow.webhooks.record(delivery(body=_webhook_body(n)))
        payment_ids.append(payment.payment_id)
    return payment_ids


def _webhook_body(n: int) -> bytes:
    return f'{{"data":{{"customer_details":{{"customer_email":"asha{n}@example.com"}}}}}}'.encode()


async def test_webhook_bodies_kept_in_plain_text_before_sealing_are_sealed(own_pool):
    await stored_under_the_old_key(own_pool, 1)
    # As migration 0015 found the rows written before it: the body in plain text, nothing sealed.
    await own_pool.execute(
        "UPDATE webhook_logs SET raw_body = $1, raw_body_sealed = NULL, raw_body_key_id = NULL",
        _webhook_body(0).decode(),
    )
    current = PiiCipher(NEW, previous_keys=(OLD,))

    done = await reencrypt(own_pool, current)

    assert (done.webhooks, done.remaining) == (1, 0)
    [row] = await own_pool.fetch("SELECT id, raw_body, raw_body_key_id FROM webhook_logs")
    assert (row["raw_body"], row["raw_body_key_id"]) == (None, current.key_id)
    async with pg_unit_of_work(own_pool, cipher=PiiCipher(NEW)) as uow:
        assert (await uow.webhooks.get(row["id"])).raw_body == _webhook_body(0).decode()


async def test_every_row_is_sealed_again_under_the_new_key_and_the_old_key_can_go(own_pool):
    payment_ids = await stored_under_the_old_key(own_pool, 5)
    rotating = PiiCipher(NEW, previous_keys=(OLD,))

    done = await reencrypt(own_pool, rotating, batch_size=2)

    assert (done.payments, done.emails, done.webhooks, done.remaining) == (5, 5, 5, 0)
    new_only = PiiCipher(NEW)
    async with pg_unit_of_work(own_pool, cipher=new_only) as uow:
        payments = [await uow.payments.get(payment_id) for payment_id in payment_ids]
    assert [p.customer.email for p in payments] == [f"asha{n}@example.com" for n in range(5)]
    assert [p.customer.name for p in payments] == [f"Asha {n}" for n in range(5)]
    rows = await own_pool.fetch(
        "SELECT customer_email_hash, encryption_key_id FROM payments ORDER BY created_at"
    )
    assert {row["encryption_key_id"] for row in rows} == {new_only.key_id}
    assert {row["customer_email_hash"] for row in rows} == {
        new_only.lookup_hash(f"asha{n}@example.com", kind="email") for n in range(5)
    }
    emails = await own_pool.fetch("SELECT recipient_hash, recipient_key_id FROM emails")
    assert {row["recipient_key_id"] for row in emails} == {new_only.key_id}
    assert {row["recipient_hash"] for row in emails} == {
        new_only.lookup_hash(f"asha{n}@example.com", kind="email") for n in range(5)
    }


async def test_a_second_run_finds_nothing_to_do(own_pool):
    await stored_under_the_old_key(own_pool, 2)
    rotating = PiiCipher(NEW, previous_keys=(OLD,))
    await reencrypt(own_pool, rotating)

    again = await reencrypt(own_pool, rotating)

    assert (again.payments, again.emails, again.webhooks, again.remaining) == (0, 0, 0, 0)


async def test_a_row_locked_by_another_transaction_is_left_for_the_next_run(own_pool):
    [locked, free] = await stored_under_the_old_key(own_pool, 2)
    rotating = PiiCipher(NEW, previous_keys=(OLD,))

    async with own_pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM payments WHERE payment_id = $1 FOR UPDATE", locked)
        first = await reencrypt(own_pool, rotating)
    second = await reencrypt(own_pool, rotating)

    assert (first.payments, first.remaining) == (1, 1)
    assert (second.payments, second.remaining) == (1, 0)
    keys = await own_pool.fetch("SELECT payment_id, encryption_key_id FROM payments")
    assert {row["encryption_key_id"] for row in keys} == {rotating.key_id}
    assert {row["payment_id"] for row in keys} == {locked, free}

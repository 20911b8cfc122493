"""``PgEmailLog``: the shared contract, and what only the table can show (no plaintext address)."""

from __future__ import annotations

import os
from functools import partial

import pytest

from payments.bridges.postgres.emails import RECIPIENT_COLUMN
from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_emails import EMAIL_CONTRACTS, an_email, begun

pytestmark = pytest.mark.integration

ROW = "SELECT * FROM emails WHERE email_id = $1"


@pytest.fixture
def cipher() -> PiiCipher:
    return PiiCipher(os.urandom(32))


@pytest.mark.parametrize("contract", EMAIL_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_postgres_email_log_keeps_the_contract_that(contract, pg_pool, cipher):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=cipher))


async def test_the_recipient_is_stored_sealed_with_a_keyed_hash_and_never_in_plain_text(pg_pool, cipher):
    record = an_email(recipient="asha.rao@example.com")
    await begun(partial(pg_unit_of_work, pg_pool, cipher=cipher), record)

    row = await pg_pool.fetchrow(ROW, record.email_id)

    assert all(
        b"asha.rao" not in (value if isinstance(value, bytes) else str(value).encode())
        for value in row.values()
    )
    assert row["recipient_hash"] == cipher.lookup_hash("asha.rao@example.com", kind="email")
    assert row["recipient_key_id"] == cipher.key_id
    opened = cipher.open(row["recipient_sealed"], key_id=row["recipient_key_id"], column=RECIPIENT_COLUMN)
    assert opened == "asha.rao@example.com"


async def test_a_unit_of_work_without_a_cipher_cannot_reach_the_emails(pg_pool):
    async with pg_unit_of_work(pg_pool) as uow:
        with pytest.raises(RuntimeError, match="cipher"):
            _ = uow.emails

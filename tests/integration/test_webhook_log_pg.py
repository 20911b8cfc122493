from __future__ import annotations

import os
from functools import partial

import pytest

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_webhook_logs import WEBHOOK_LOG_CONTRACTS, delivery

CIPHER = PiiCipher(os.urandom(32))


@pytest.mark.parametrize("contract", WEBHOOK_LOG_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_the_postgres_webhook_log_keeps_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))


async def test_the_body_is_stored_sealed_and_read_back_whole(pg_pool):
    body = b'{"data":{"customer_details":{"customer_email":"asha.sealed@example.com"}},"type":"X"}'
    received = delivery(body=body)
    async with pg_unit_of_work(pg_pool, cipher=CIPHER) as uow:
        log = await uow.webhooks.record(received)

    row = await pg_pool.fetchrow("SELECT * FROM webhook_logs WHERE id = $1", log.id)

    assert log.raw_body == body.decode()
    assert row["raw_body"] is None
    assert row["raw_body_key_id"] == CIPHER.key_id
    assert all(
        b"asha.sealed" not in (value if isinstance(value, bytes) else str(value).encode())
        for value in row.values()
    )


async def test_a_body_stored_in_plain_text_before_sealing_is_still_read(pg_pool):
    async with pg_unit_of_work(pg_pool, cipher=CIPHER) as uow:
        log = await uow.webhooks.record(delivery(body=b'{"type":"OLD"}'))
        await uow.connection.execute(
            "UPDATE webhook_logs SET raw_body = $2, raw_body_sealed = NULL, raw_body_key_id = NULL"
            " WHERE id = $1",
            log.id,
            '{"type":"OLD"}',
        )
        again = await uow.webhooks.get(log.id)

    assert again.raw_body == '{"type":"OLD"}'

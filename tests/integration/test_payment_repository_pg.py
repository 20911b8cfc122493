"""PgPaymentRepository keeps the payment repository contract; personal data is never stored in clear."""

from __future__ import annotations

import os
from functools import partial

import pytest

from payments.bridges.postgres.pii import PiiCipher
from payments.bridges.postgres.unit_of_work import pg_unit_of_work
from tests.contracts_payments import PAYMENT_CONTRACTS, new_payment

CIPHER = PiiCipher(os.urandom(32))


@pytest.mark.parametrize("contract", PAYMENT_CONTRACTS, ids=lambda contract: contract.__name__)
async def test_postgres_payments_keep_the_contract_that(contract, pg_pool):
    await contract(partial(pg_unit_of_work, pg_pool, cipher=CIPHER))


async def test_the_customers_email_phone_and_name_are_stored_only_encrypted(pg_pool):
    payment = new_payment()
    async with pg_unit_of_work(pg_pool, cipher=CIPHER) as uow:
        await uow.payments.add(payment)

    row = await pg_pool.fetchrow("SELECT * FROM payments WHERE payment_id = $1", payment.payment_id)
    stored_text = " ".join(str(value) for value in row.values())
    assert "asha@example.com" not in stored_text
    assert "9876543210" not in stored_text
    assert "Asha Rao" not in stored_text
    assert row["customer_email_hash"] == CIPHER.lookup_hash("ASHA@example.com", kind="email")
    assert row["encryption_key_id"] == CIPHER.key_id

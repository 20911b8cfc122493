"""After a payment's whole life (created, paid through Cashfree's webhook, invoiced, mailed, refunded),
no column of any table holds the customer's email, phone or name in plain text: a query reads every
text, JSON and binary column of the schema for them."""

from __future__ import annotations

import uuid
from typing import Final

from tests.waiting import eventually

USER: Final = "user-private"
#: Text-like columns: compared as text. Binary columns: searched for the value's UTF-8 bytes.
COLUMNS: Final = """
SELECT table_name, column_name, data_type
  FROM information_schema.columns
 WHERE table_schema = 'public'
   AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea')
 ORDER BY table_name, column_name
"""


def holding(table: str, column: str, data_type: str) -> str:
    """A query counting the rows of ``table`` whose ``column`` contains $1, $2 or $3."""
    # Identifiers come from information_schema of our own schema, quoted; values are parameters.
    target = f'"{table}"."{column}"'
    if data_type == "bytea":
        found = " OR ".join(f"position(convert_to(${n}, 'UTF8') in {target}) > 0" for n in (1, 2, 3))
    else:
        found = " OR ".join(f"strpos({target}::text, ${n}) > 0" for n in (1, 2, 3))
    return f'SELECT count(*) FROM "{table}" WHERE {found}'


async def test_no_column_of_any_table_holds_the_customers_email_phone_or_name(stack):
    tag = uuid.uuid4().hex[:10]
    email, phone, name = f"priya.{tag}@example.com", f"98{int(tag, 16) % 10**8:08d}", f"Priya {tag}"
    created = await stack.api.post(
        "/api/v1/payments/create",
        json={
            "amount": "750.00",
            "currency": "INR",
            "customer": {"name": name, "email": email, "phone": phone},
            "description": "CommDesk Pro",
        },
        headers=stack.headers(USER, key=uuid.uuid4().hex),
    )
    assert created.status == 201, await created.text()
    payment = await created.json()
    await stack.pay(payment["paymentSessionId"], "testsuccess@gocash")  # Cashfree's webhook follows
    await eventually(lambda: _mailed(stack, email, 1), timeout=60, what="the receipt, with its invoice")
    refund = await stack.refund(USER, payment["paymentId"], "100.00")
    assert refund.status in (201, 202), await refund.text()
    await eventually(lambda: _mailed(stack, email, 2), timeout=60, what="the refund email")
    webhooks = await stack.rows("SELECT count(*) FROM webhook_logs WHERE order_id = $1", payment["orderId"])
    assert webhooks[0][0] >= 1, "the webhook that carried the customer's details was not logged"

    found = {}
    for column in await stack.rows(COLUMNS):
        [row] = await stack.rows(holding(*column), email, phone, name)
        if row[0]:
            found[f"{column['table_name']}.{column['column_name']}"] = row[0]

    assert found == {}, f"plain-text personal data in {found}"


def _mailed(stack, address: str, count: int) -> bool:
    return sum(address in str(message["To"]) for message in stack.mail.messages) >= count

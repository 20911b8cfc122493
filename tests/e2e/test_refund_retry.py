"""A refund whose Cashfree call fails for a while: the command retries with the same refund id, and
Cashfree ends up holding exactly one refund."""

from __future__ import annotations

import aiohttp
import pytest

from tests.waiting import eventually

USER = "user-refund-retry"


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    # The API stops waiting after a second, so the retried command is seen through the status URL.
    return {**environ, "COMMAND_REPLY_TIMEOUT_SECONDS": "1"}


async def test_a_transiently_failing_refund_succeeds_after_a_retry_and_cashfree_holds_one(stack):
    payment = await stack.paid(USER)
    # The client's own retries (3) and the first delivery all meet a 500; the tier's retry gets through.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{stack.sandbox_url}/_sandbox/faults/next", json={"statuses": [500, 500, 500, 500]}
        ) as r,
    ):
        assert r.status == 200, await r.text()

    response = await stack.refund(USER, payment["paymentId"], "100.00")

    assert response.status == 202, await response.text()
    refund_id = (await response.json())["refundId"]

    async def submitted() -> bool:
        rows = await stack.rows("SELECT status FROM refunds WHERE refund_id = $1", refund_id)
        return bool(rows) and rows[0]["status"] == "PROCESSING"

    await eventually(submitted, timeout=60, what="the retried refund to reach Cashfree")
    held = [key for key in stack.sandbox.ledger.refunds if key[0] == payment["orderId"]]
    assert held == [(payment["orderId"], refund_id)]

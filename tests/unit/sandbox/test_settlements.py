"""Settlements: the charges maths, the per-order read, and the paginated reports followed to the end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from payments.bridges.cashfree.sandbox.settlements import charges
from tests.unit.sandbox.support import CREDENTIALS, Pg
from tests.waiting import eventually

EVERYTHING = {"start_date": "2000-01-01", "end_date": "2100-12-31"}


@pytest.mark.parametrize(
    ("amount", "charge", "tax"),
    [
        ("100.00", "2.00", "0.36"),
        ("1.00", "0.02", "0.00"),
        ("999.99", "20.00", "3.60"),
        ("12.75", "0.26", "0.05"),
    ],
)
def test_charges_are_two_percent_plus_gst_rounded_to_the_paisa(amount, charge, tax):
    assert charges(Decimal(amount)) == (Decimal(charge), Decimal(tax))


async def test_settling_a_paid_order_nets_off_the_charges(pg: Pg):
    order = await pg.paid_order("1234.50")

    settled = await pg.control("POST", "/settle", {"order_id": order["order_id"]})
    fetched = await pg.call("GET", f"/orders/{order['order_id']}/settlements")

    assert str(fetched["order_amount"]) == "1234.50"
    assert str(fetched["service_charge"]) == "24.69"
    assert str(fetched["service_tax"]) == "4.44"
    assert str(fetched["settlement_amount"]) == "1205.37"
    assert isinstance(fetched["settlement_id"], int)
    assert fetched["cf_settlement_id"] == settled["settlement"]["cf_settlement_id"]
    assert fetched["transfer_utr"] == settled["settlement"]["transfer_utr"]
    assert fetched["transfer_time"] == settled["settlement"]["transfer_time"]


async def test_an_unsettled_order_answers_404_settlement_not_found(pg: Pg):
    order = await pg.paid_order()

    response = await pg.client.get(f"/pg/orders/{order['order_id']}/settlements", headers=CREDENTIALS)

    assert response.status == 404
    assert (await response.json())["code"] == "settlement_not_found"


async def test_settle_refuses_an_unpaid_order_and_skips_settled_ones(pg: Pg):
    unpaid = await pg.create_order()
    paid = await pg.paid_order()
    await pg.control("POST", "/settle", {})

    refused = await pg.client.post("/_sandbox/settle", json={"order_id": unpaid["order_id"]})
    again = await pg.control("POST", "/settle", {"order_id": paid["order_id"]})

    assert refused.status == 400
    assert again == {"settlement": None, "settlements": []}


async def test_settling_everything_makes_one_batch_and_one_settlement_webhook(pg: Pg, receiver):
    first, second = await pg.paid_order("10.00"), await pg.paid_order("20.00")

    settled = await pg.control("POST", "/settle", {})

    def settlement_hooks():
        return [d.payload for d in receiver.received if d.payload["type"] == "SETTLEMENT_SUCCESS"]

    hooks = await eventually(settlement_hooks, what="the settlement webhook")
    assert {row["order_id"] for row in settled["settlements"]} == {first["order_id"], second["order_id"]}
    assert len(hooks) == 1
    assert str(hooks[0]["data"]["settlement"]["amount_settled"]) == "29.29"
    assert hooks[0]["data"]["settlement"]["utr"] == settled["settlement"]["transfer_utr"]


async def follow(pg: Pg, path: str, filters: dict[str, Any], limit: int) -> list[list[Any]]:
    """Every page of a paginated report, following the cursor until it is null."""
    pages, cursor = [], None
    while True:
        page = await pg.call(
            "POST", path, {"pagination": {"limit": limit, "cursor": cursor}, "filters": filters}
        )
        assert page["limit"] == limit
        pages.append(page["data"])
        cursor = page["cursor"]
        if cursor is None:
            return pages


async def test_all_settlements_page_through_to_the_end(pg: Pg):
    orders = [await pg.paid_order(f"{10 + n}.00") for n in range(5)]
    await pg.control("POST", "/settle", {})

    pages = await follow(pg, "/settlements", {}, limit=2)

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(row["order_id"] for page in pages for row in page) == sorted(o["order_id"] for o in orders)


async def test_settlements_filter_by_utr_and_date(pg: Pg):
    await pg.paid_order()
    first = await pg.control("POST", "/settle", {})
    await pg.paid_order()
    await pg.control("POST", "/settle", {})

    by_utr = await follow(pg, "/settlements", {"settlement_utrs": [first["settlement"]["transfer_utr"]]}, 10)
    long_ago = await follow(pg, "/settlements", {"start_date": "2000-01-01", "end_date": "2000-12-31"}, 10)

    assert [row["cf_settlement_id"] for row in by_utr[0]] == [first["settlement"]["cf_settlement_id"]]
    assert long_ago == [[]]


async def test_recon_lists_payments_refunds_and_settlements_across_pages(pg: Pg):
    orders = [await pg.paid_order("100.00") for _ in range(3)]
    await pg.refund(orders[0]["order_id"], "refund-1", "10.00")
    await pg.control("POST", "/settle", {})

    pages = await follow(pg, "/recon", EVERYTHING, limit=2)
    rows = [row for page in pages for row in page]

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(row["event_type"] for row in rows) == ["PAYMENT"] * 3 + ["REFUND", "SETTLEMENT"]
    assert len({row["event_id"] for row in rows}) == 5
    refund = next(row for row in rows if row["event_type"] == "REFUND")
    assert (refund["sale_type"], str(refund["event_amount"])) == ("DEBIT", "10.00")


async def test_recon_requires_the_date_range(pg: Pg):
    response = await pg.client.post(
        "/pg/recon",
        json={"pagination": {"limit": 10}, "filters": {"start_date": "2024-01-01"}},
        headers=CREDENTIALS,
    )

    assert response.status == 400
    assert (await response.json())["code"] == "filters.end_date_missing"


async def test_settlement_recon_groups_each_settled_payment(pg: Pg):
    for _ in range(3):
        await pg.paid_order("50.00")
    await pg.control("POST", "/settle", {})

    pages = await follow(pg, "/settlement/recon", EVERYTHING, limit=2)
    rows = [row for page in pages for row in page]

    assert len(rows) == 3
    assert {str(row["event_details"]["event_settlement_amount"]) for row in rows} == {"48.82"}
    assert all(row["settlement_details"]["utr"] for row in rows)


@pytest.mark.parametrize(
    ("pagination", "code"),
    [
        ({"limit": 0}, "pagination.limit_invalid"),
        ({"limit": 5, "cursor": "%%%"}, "pagination.cursor_invalid"),
    ],
)
async def test_bad_pagination_answers_400(pg: Pg, pagination, code):
    response = await pg.client.post(
        "/pg/recon", json={"pagination": pagination, "filters": EVERYTHING}, headers=CREDENTIALS
    )

    assert (await response.json())["code"] == code

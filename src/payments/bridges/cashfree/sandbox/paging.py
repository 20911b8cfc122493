"""Cursor pagination and date filters of ``POST /settlements``, ``/settlement/recon`` and ``/recon``.

All three answer ``{"cursor", "limit", "data"}``: SPEC gives that shape to the recon endpoints, and the
sandbox uses it for ``/settlements`` too (SPEC types that answer as one SettlementEntity, which cannot
page; the real paginated shape is UNCONFIRMED, FACTS §6). ``cursor`` is an opaque string naming the
last row sent; it is null on the last page. Rows come sorted by event time, then id, so a cursor stays
valid while new rows arrive.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from payments.bridges.cashfree.sandbox import validation as check
from payments.bridges.cashfree.sandbox.clock import parse_time
from payments.bridges.cashfree.sandbox.entities import JsonObject
from payments.bridges.cashfree.sandbox.errors import bad_value, missing

#: SPEC: ``limit`` at most 1000, 10 when not given.
MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 10

#: Where a row sorts: its event time, then its id.
RowKey = tuple[datetime, str]
Row = tuple[RowKey, JsonObject]


@dataclass(frozen=True)
class Page:
    limit: int
    after: RowKey | None


@dataclass(frozen=True)
class TimeRange:
    start: datetime | None
    end: datetime | None

    def __contains__(self, moment: datetime) -> bool:
        return (self.start is None or moment >= self.start) and (self.end is None or moment <= self.end)


def page_of(body: dict[str, Any]) -> Page:
    """``pagination: {limit, cursor}``; the cursor must be one this sandbox handed out."""
    pagination = check.sub_object(body, "pagination", required=True)
    assert pagination is not None  # required=True raises instead of returning None
    limit = pagination.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise bad_value("pagination.limit", f"must be a number from 1 to {MAX_LIMIT}")
    cursor = pagination.get("cursor")
    return Page(limit, None if cursor in (None, "") else _decode(cursor))


def time_range(body: dict[str, Any], *, required: bool) -> tuple[dict[str, Any], TimeRange]:
    """The ``filters`` object and its ``start_date``/``end_date`` (bare dates cover whole IST days)."""
    filters = check.sub_object(body, "filters", required=True) or {}
    bounds = []
    for name in ("start_date", "end_date"):
        value = filters.get(name)
        if value is None and required:
            raise missing(f"filters.{name}")
        bounds.append(None if value is None else _moment(name, value))
    return filters, TimeRange(*bounds)


def _moment(name: str, value: object) -> datetime:
    try:
        return parse_time(str(value), end_of_day=name == "end_date")
    except ValueError:
        raise bad_value(f"filters.{name}", "must be an ISO 8601 date or date-time") from None


def paginate(rows: Iterable[Row], page: Page) -> JsonObject:
    """One page of ``rows`` after the cursor, and the cursor of the next page (None: the last)."""
    ordered = sorted((row for row in rows if page.after is None or row[0] > page.after), key=lambda r: r[0])
    chunk = ordered[: page.limit]
    cursor = _encode(chunk[-1][0]) if len(ordered) > page.limit else None
    return {"cursor": cursor, "limit": page.limit, "data": [data for _, data in chunk]}


def _encode(key: RowKey) -> str:
    text = f"{key[0].isoformat()}|{key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(cursor: object) -> RowKey:
    try:
        moment, _, row_id = base64.urlsafe_b64decode(str(cursor).encode()).decode().partition("|")
        return datetime.fromisoformat(moment), row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_value("pagination.cursor", "is not a cursor this API returned") from None

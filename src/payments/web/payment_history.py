"""``GET /api/v1/payments/history``: its query parameters and its opaque cursor.

A user sees their own payments; an admin sees everyone's, or one user's with ``userId``. ``from`` and
``to`` take ISO dates or date-times (UTC when no offset is given); a date in ``to`` includes that whole
day. The cursor is the base64url of the last row's ``created_at`` and ``payment_id``: the repository
pages by that pair, newest first, so rows created while a client pages never shift its pages.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from multidict import MultiMapping

from payments.domain.errors import Forbidden, ValidationFailed
from payments.domain.payment.model import Payment
from payments.domain.payment.repository import HistoryQuery
from payments.domain.payment.states import PaymentState
from payments.web.auth import USER_ID_PATTERN, Principal

DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
PARAMETERS: Final = frozenset({"userId", "status", "from", "to", "limit", "cursor"})
_PAYMENT_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_PARAMETER_LENGTH: Final = 200


def history_query(principal: Principal, query: MultiMapping[str]) -> HistoryQuery:
    """The repository query for this caller's request, or ``ValidationFailed`` / ``Forbidden``."""
    params = _single_values(query)
    created_from = _moment(params, "from", end_of_day=False)
    created_to = _moment(params, "to", end_of_day=True)
    if created_from is not None and created_to is not None and created_from >= created_to:
        raise ValidationFailed("from: must be before to")
    return HistoryQuery(
        user_id=_whose(principal, params.get("userId")),
        status=_status(params.get("status")),
        created_from=created_from,
        created_to=created_to,
        after=decode_cursor(params["cursor"]) if "cursor" in params else None,
        limit=_limit(params.get("limit")),
    )


def _single_values(query: MultiMapping[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name in query:
        if name not in PARAMETERS:
            raise ValidationFailed(f"{name[:40]}: unknown parameter")
        values = query.getall(name)
        if len(values) != 1 or len(values[0]) > _MAX_PARAMETER_LENGTH:
            raise ValidationFailed(f"{name}: give one value of at most {_MAX_PARAMETER_LENGTH} characters")
        params[name] = values[0]
    return params


def _whose(principal: Principal, user_id: str | None) -> str | None:
    if user_id is None:
        return None if principal.is_admin else principal.user_id
    if USER_ID_PATTERN.fullmatch(user_id) is None:
        raise ValidationFailed("userId: is not a user id")
    if not principal.is_admin and user_id != principal.user_id:
        raise Forbidden("only administrators may see another user's payments")
    return user_id


def _status(value: str | None) -> PaymentState | None:
    if value is None:
        return None
    try:
        return PaymentState(value)
    except ValueError:
        raise ValidationFailed("status: is not a payment status") from None


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
        raise ValidationFailed(f"limit: must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def _moment(params: dict[str, str], name: str, *, end_of_day: bool) -> datetime | None:
    text = params.get(name)
    if text is None:
        return None
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return datetime.combine(day, time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
        # In UTC here, not in the driver: an offset that moves the moment out of years 1-9999 is a bad
        # parameter, not a server error.
        return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(f"{name}: must be an ISO date or date-time in years 1 to 9999") from None


def encode_cursor(payment: Payment) -> str:
    """Where the page after ``payment`` starts."""
    raw = f"{payment.created_at.isoformat()}|{payment.payment_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, payment_id) a cursor names, or ``ValidationFailed``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        created, _, payment_id = raw.partition("|")
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None or _PAYMENT_ID.fullmatch(payment_id) is None:
            raise ValueError("not ours")
        return created_at.astimezone(UTC), payment_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise ValidationFailed("cursor: is not a cursor of this API") from None

"""Field checks that answer with Cashfree's codes: ``<path>_missing`` and ``<path>_invalid`` (FACTS §8).

``path`` is the field's dotted place in the body (``customer_details.customer_phone``), which is how
Cashfree names nested fields in its codes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from payments.bridges.cashfree.sandbox.errors import bad_value, invalid, missing
from payments.bridges.cashfree.sandbox.jsonbody import loads

#: Cashfree amounts carry at most two decimals (paise).
PAISE: Final = Decimal("0.01")
#: Letters, digits, ``_`` and ``-``: the alphabet of merchant-chosen ids.
ID_CHARACTERS: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def json_object(raw: bytes) -> dict[str, Any]:
    """The request body as an object; anything else is a 400."""
    try:
        body = loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise invalid("request_invalid", "the request body must be a JSON object")
    return body


def sub_object(data: Mapping[str, Any], path: str, *, required: bool = False) -> dict[str, Any] | None:
    """A nested object such as ``customer_details``; None when absent and optional."""
    value = data.get(path.rsplit(".", 1)[-1])
    if value is None:
        if required:
            raise missing(path)
        return None
    if not isinstance(value, dict):
        raise bad_value(path, "must be an object")
    return value


def text(
    data: Mapping[str, Any],
    path: str,
    *,
    lengths: tuple[int, int],
    required: bool = False,
    pattern: re.Pattern[str] | None = None,
) -> str | None:
    """A string field within ``lengths`` (inclusive); an empty string counts as missing."""
    value = data.get(path.rsplit(".", 1)[-1])
    if value is None or value == "":
        if required:
            raise missing(path)
        return None
    low, high = lengths
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise bad_value(path, f"must be a string of {low} to {high} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise bad_value(path, "has characters that are not allowed")
    return value


#: The real maximum is unconfirmed (FACTS §2 mentions 1,000,000); the sandbox refuses anything above
#: a billion, which no account accepts, so absurd inputs get Cashfree's 400 rather than a crash.
MAX_AMOUNT: Final = Decimal("1000000000")


def amount(data: Mapping[str, Any], path: str, *, minimum: Decimal) -> Decimal:
    """A JSON number of at least ``minimum`` with at most two decimals, kept exact."""
    value = data.get(path.rsplit(".", 1)[-1])
    if value is None:
        raise missing(path)
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise bad_value(path, "must be a number")
    exact = Decimal(value)
    # The bound comes first: quantizing a number with more digits than the context holds raises.
    if not exact.is_finite() or not minimum <= exact <= MAX_AMOUNT or exact != exact.quantize(PAISE):
        raise invalid(f"{path}_invalid", f"Invalid amount: {minimum} to {MAX_AMOUNT}, at most 2 decimals")
    return exact.quantize(PAISE)


def choice(data: Mapping[str, Any], path: str, allowed: frozenset[str], *, default: str | None = None) -> str:
    """One of ``allowed``; ``default`` when absent (required when there is no default)."""
    value = data.get(path.rsplit(".", 1)[-1], default)
    if value is None:
        raise missing(path)
    if value not in allowed:
        raise bad_value(path, f"must be one of {', '.join(sorted(allowed))}")
    return str(value)


def web_url(data: Mapping[str, Any], path: str) -> str | None:
    """An http(s) URL of at most 250 characters (plain http is allowed so tests can listen locally)."""
    value = text(data, path, lengths=(1, 250))
    if value is not None and not value.startswith(("https://", "http://")):
        raise bad_value(path, "must be an http(s) URL")
    return value

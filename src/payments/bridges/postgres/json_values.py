"""JSON for jsonb columns: what we write, how we read it back, and the canonical form we hash.

Statements pass JSON as text and cast it (``$1::text::jsonb``) and read it back as text
(``payload::text``), so the bridge behaves the same on any connection, whether or not the pool's
json codecs are installed on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from payments.domain.errors import InvalidPayload


def _encode_extra(value: object) -> str:
    # Money and timestamps travel as strings: a JSON number would become a float in most readers.
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_json(value: object) -> str:
    """JSON text for a jsonb column; ``Decimal``, ``datetime``, ``date`` and ``UUID`` become strings.

    Raises ``InvalidPayload`` for anything else that JSON cannot carry, NaN and infinities included
    (jsonb refuses them).
    """
    try:
        return json.dumps(value, default=_encode_extra, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise InvalidPayload(f"value is not JSON-serialisable: {error}") from error


def from_json(text: str | None) -> Any:
    """Parse JSON read back from the database; numbers with a fraction become ``Decimal``, never float."""
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal)


def canonical_json(value: object) -> str:
    """One ASCII text per value, for hashing: keys sorted, no whitespace, decimals written exactly.

    Accepts what ``from_json`` returns (dict, list, str, int, Decimal, bool, None). ``json.dumps``
    cannot write a ``Decimal`` as a number without first turning it into a float, hence this writer.
    """
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(key))}:{canonical_json(value[key])}" for key in sorted(value))
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")

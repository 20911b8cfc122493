"""JSON that keeps money exact: amounts are ``Decimal`` in, and ``2.00`` stays ``2.00`` out.

The standard encoder would turn a Decimal into a float (``2.0``), which changes the bytes a webhook
is signed over (FACTS §12), so bodies are written here instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

#: A parsed JSON value (objects and arrays hold more of them).
JsonValue = Any


def loads(raw: bytes) -> JsonValue:
    """Parse ``raw``; numbers with a fraction become ``Decimal``, never ``float``."""
    return json.loads(raw, parse_float=Decimal)


def dumps(value: JsonValue) -> bytes:
    """Compact JSON (Cashfree's own webhook bodies have no spaces), Decimals written digit for digit."""
    return "".join(_encode(value)).encode("utf-8")


def _encode(value: JsonValue) -> list[str]:
    if isinstance(value, Mapping):
        parts = [f"{json.dumps(str(key))}:{''.join(_encode(item))}" for key, item in value.items()]
        return ["{", ",".join(parts), "}"]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ["[", ",".join("".join(_encode(item)) for item in value), "]"]
    if isinstance(value, Decimal):
        return [format(value, "f")]
    return [json.dumps(value)]

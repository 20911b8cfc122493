"""JSON text as we mean it: out, amounts written with exactly two decimals; in, numbers read as Decimal.

``json.dumps`` cannot write a ``Decimal`` as a number, and a float would turn ``100.50`` into
``100.5`` (or worse, ``0.1 + 0.2``). So request bodies are written by the small encoder below, which
knows the few types our request models hold. Responses are read with ``parse_float=Decimal``, so
``2.00`` arrives as ``Decimal("2.00")`` and no amount ever passes through a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from pydantic import BaseModel

#: Cashfree takes amounts as numbers with at most two decimals (SPEC ``order_amount``, ``refund_amount``).
_CENTS: Final = Decimal("0.01")


def dumps(model: BaseModel) -> bytes:
    """The request body for ``model``: compact JSON, unset and None fields left out, amounts as ``100.50``."""
    return encode(model.model_dump(exclude_none=True)).encode("utf-8")


def encode(value: object) -> str:
    """JSON text for plain data (dicts, lists, str, int, bool, None, Decimal amounts, datetimes)."""
    if value is None or isinstance(value, bool | int | str):
        # bool before int matters and json.dumps gets it right: True -> true, not 1.
        return json.dumps(value)
    if isinstance(value, Decimal):
        return amount_text(value)
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        members = (f"{json.dumps(str(key))}:{encode(item)}" for key, item in value.items())
        return "{" + ",".join(members) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode(item) for item in value) + "]"
    # Floats included: an amount that went through a float may already be wrong.
    raise TypeError(f"cannot write {type(value).__name__} into a Cashfree request")


def amount_text(amount: Decimal) -> str:
    """``Decimal("100.5")`` -> ``100.50``; refuses anything that would need rounding."""
    if not amount.is_finite():
        raise ValueError("an amount must be a finite number")
    cents = amount.quantize(_CENTS)
    if cents != amount:
        raise ValueError("an amount may have at most two decimals")
    return f"{cents:f}"


def loads(body: bytes) -> Any:
    """Parse a response body; numbers with a fraction become ``Decimal``, NaN and Infinity are refused."""
    return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")

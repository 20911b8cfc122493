"""The JSON bodies of the payment writes, read exactly and validated before anything is sent.

Bodies are parsed with ``Decimal`` for every non-integer number, so an amount is never a float, not
even for a moment; ``NaN``, ``Infinity``, duplicate keys and nesting deeper than ``MAX_JSON_DEPTH``
are malformed JSON. The models are strict pydantic models (DESIGN §8): unknown fields are refused,
every string is length-bounded and may not hold control characters, and limits that are
configuration (maximum amount, currencies, metadata size) come in through the validation context.
A refusal becomes one ``ValidationFailed`` with a precise code (``web/errors.py``) and the path of
the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from itertools import accumulate
from typing import Annotated, Any, Final, Self, TypeVar
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from payments.domain.errors import ValidationFailed
from payments.domain.money import MINOR_UNITS
from payments.pipeline.settings import PaymentSettings
from payments.web.errors import REQUEST_ERRORS, MalformedJson
from payments.web.idempotency import canonical_json

#: C0 and C1 controls, lone surrogates (they cannot be stored as UTF-8) and the bidi overrides that
#: make text display differently from what it is. ZWJ and ZWNJ stay: Indic scripts need them.
_FORBIDDEN_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
#: A decimal written as a string: no exponent, sign only to be refused as not positive, bounded.
_DECIMAL_STRING: Final = re.compile(r"-?\d{1,20}(\.\d{1,20})?")
#: Cashfree's customer_phone: 10 digits, or an international number with + and 8-15 digits.
_PHONE: Final = re.compile(r"\d{10}|\+\d{8,15}")
#: Plausible, not RFC 5322: one @, no spaces, a dot in the domain.
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
#: Payment and order ids as we make them, with room for ids made by other means.
_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Deepest nesting of arrays and objects a body may have: our bodies use three levels, a client's
#: metadata the rest. Checked before parsing, so ten thousand ``[`` cost one linear scan, not a recursion.
MAX_JSON_DEPTH: Final = 32
#: A JSON string, escapes included; the closing quote is optional so that an unterminated string is
#: consumed once, to the end, rather than rescanned from every quote inside it (linear, not quadratic).
_JSON_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKETS: Final = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP: Final[Mapping[str, int]] = {"[": 1, "{": 1, "]": -1, "}": -1}
#: The header a client names its device with at create; fraud screening counts payments per device.
DEVICE_FINGERPRINT_HEADER: Final = "X-Device-Fingerprint"
#: Opaque to us: long enough for a hash in hex or base64url, nothing that could break a log line.
_DEVICE_FINGERPRINT: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _plain_text(value: str) -> str:
    if _FORBIDDEN_CHARACTERS.search(value):
        raise _refuse("control_characters", "must not contain control characters")
    return value


def _limits(info: ValidationInfo) -> PaymentSettings:
    limits = info.context.get("payments") if isinstance(info.context, Mapping) else None
    if not isinstance(limits, PaymentSettings):
        raise TypeError("validate payment bodies with context={'payments': PaymentSettings}")
    return limits


def _amount(value: object, info: ValidationInfo) -> Decimal:
    amount = _exact_decimal(value)
    if amount is None or not amount.is_finite() or amount <= 0:
        raise _refuse("amount_invalid", "must be a decimal number greater than zero")
    if amount > _limits(info).max_amount:
        raise _refuse("amount_too_large", "is larger than a payment may be")
    return amount


def _exact_decimal(value: object) -> Decimal | None:
    # bool is an int to Python, and a JSON true is no amount.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    # Strings only in plain decimal notation: Decimal() alone would also take "1e3", "1_000" and "NaN".
    if isinstance(value, str) and _DECIMAL_STRING.fullmatch(value):
        return Decimal(value)
    return None


def _currency(value: object, info: ValidationInfo) -> str:
    if not isinstance(value, str) or value not in _limits(info).currencies or value not in MINOR_UNITS:
        raise _refuse("currency_unsupported", "is not an accepted currency")
    return value


def _phone(value: object) -> str:
    if not isinstance(value, str) or _PHONE.fullmatch(value) is None:
        raise _refuse("customer_phone_invalid", "must be 10 digits, or + and 8 to 15 digits")
    return value


def _email(value: str) -> str:
    if _EMAIL.fullmatch(value) is None:
        raise _refuse("email_invalid", "must be an email address")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        raise _refuse("url_invalid", "must be an http or https URL")
    return value


def _metadata(value: object, info: ValidationInfo) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse("metadata_invalid", "must be a JSON object")
    if _holds_forbidden_characters(value):
        raise _refuse("control_characters", "must not contain control characters")
    text = canonical_json(value)
    if len(text.encode("utf-8")) > _limits(info).max_metadata_bytes:
        raise _refuse("metadata_too_large", "is larger than allowed")
    # Metadata is the client's opaque data, not money: its numbers travel as plain JSON numbers (doubles);
    # one too large for a double is refused rather than stored as Infinity (which JSON cannot hold).
    result: dict[str, Any] = json.loads(text, parse_float=_finite_double)
    return result


def _finite_double(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _refuse("metadata_invalid", "holds a number too large for a double")
    return number


def _holds_forbidden_characters(value: object) -> bool:
    """Whether any key or string anywhere inside a parsed JSON value has a forbidden character."""
    if isinstance(value, str):
        return _FORBIDDEN_CHARACTERS.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_forbidden_characters(k) or _holds_forbidden_characters(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_forbidden_characters(item) for item in value)
    return False


#: The bounded, control-free strings of the bodies.
Name = Annotated[str, StringConstraints(min_length=3, max_length=100), AfterValidator(_plain_text)]
Email = Annotated[
    str, StringConstraints(min_length=3, max_length=100), AfterValidator(_plain_text), AfterValidator(_email)
]
Description = Annotated[str, StringConstraints(max_length=200), AfterValidator(_plain_text)]
ReturnUrl = Annotated[
    str, StringConstraints(max_length=250), AfterValidator(_plain_text), AfterValidator(_url)
]
Id = Annotated[str, StringConstraints(pattern=_ID.pattern)]
Amount = Annotated[Decimal, PlainValidator(_amount)]
Currency = Annotated[str, PlainValidator(_currency)]
Phone = Annotated[str, PlainValidator(_phone)]
Metadata = Annotated[dict[str, Any], PlainValidator(_metadata)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel)


class CustomerBody(_Body):
    name: Name
    email: Email
    phone: Phone


class CreatePaymentBody(_Body):
    """``POST /api/v1/payments/create``."""

    amount: Amount
    currency: Currency
    customer: CustomerBody
    description: Description | None = None
    metadata: Metadata | None = None
    return_url: ReturnUrl | None = None

    @model_validator(mode="after")
    def _amount_fits_the_currency(self) -> Self:
        quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        if self.amount.quantize(quantum) != self.amount:
            raise _refuse("amount_precision", f"amount has more decimals than {self.currency} allows")
        return self


class VerifyPaymentBody(_Body):
    """``POST /api/v1/payments/verify``: exactly one of the two ids."""

    payment_id: Id | None = None
    order_id: Id | None = None

    @model_validator(mode="after")
    def _exactly_one_id(self) -> Self:
        if (self.payment_id is None) == (self.order_id is None):
            raise _refuse("validation_failed", "give exactly one of paymentId or orderId")
        return self


_M = TypeVar("_M", bound=_Body)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, numbers exact, or ``MalformedJson`` / ``ValidationFailed``."""
    body = parse_json(await request.read())
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    return body


def parse_json(raw: bytes) -> object:
    """Strict JSON: UTF-8, at most ``MAX_JSON_DEPTH`` levels deep, non-integers as ``Decimal``, no NaN
    or Infinity, no duplicate keys."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise MalformedJson(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(
            text, parse_float=Decimal, parse_constant=_no_constants, object_pairs_hook=_no_duplicate_keys
        )
    except ValueError:
        raise MalformedJson from None


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of ``text`` nest, in one linear pass and without recursion.

    Strings are cut out first (a bracket inside one is text), then the brackets left are counted as
    +1 and -1. For valid JSON that is its nesting depth; invalid JSON fails in the parser anyway.
    """
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")  # parsers disagree on which one wins; refuse to guess
    return result


def parse_create(body: dict[str, Any], limits: PaymentSettings) -> CreatePaymentBody:
    """A valid create body, or the precise ``ValidationFailed`` for its first problem."""
    return _validate(CreatePaymentBody, body, limits)


def parse_device_fingerprint(header: str | None) -> str | None:
    """The ``X-Device-Fingerprint`` header, if sent: 1 to 128 of [A-Za-z0-9._:-], or ``ValidationFailed``."""
    if header is None:
        return None
    if _DEVICE_FINGERPRINT.fullmatch(header) is None:
        raise ValidationFailed(f"{DEVICE_FINGERPRINT_HEADER}: must be 1 to 128 of A-Z a-z 0-9 . _ : -")
    return header


def parse_verify(body: dict[str, Any], limits: PaymentSettings) -> VerifyPaymentBody:
    """A valid verify body, or ``ValidationFailed``."""
    return _validate(VerifyPaymentBody, body, limits)


def _validate(model: type[_M], body: dict[str, Any], limits: PaymentSettings) -> _M:
    try:
        return model.model_validate(body, context={"payments": limits})
    except ValidationError as error:
        raise refusal(error) from None


def refusal(error: ValidationError) -> ValidationFailed:
    """The first problem pydantic found, as the error with its code and the field's path."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    path = ".".join(str(part) for part in first["loc"])
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    kind = REQUEST_ERRORS.get(first["type"], ValidationFailed)
    return kind(f"{path}: {message}" if path else message)

"""The precise 4xx codes the API answers for requests it refuses before doing anything.

Each is a ``ValidationFailed`` (400) with its own stable ``code``, so the error middleware renders it
with the one error body. ``REQUEST_ERRORS`` finds a class by its code, for validators that name the
code of what they refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from payments.domain.errors import ValidationFailed


class MalformedJson(ValidationFailed):
    """The body is not valid JSON."""

    code = "malformed_json"


class IdempotencyKeyRequired(ValidationFailed):
    """This request needs an Idempotency-Key header."""

    code = "idempotency_key_required"


class IdempotencyKeyInvalid(ValidationFailed):
    """The Idempotency-Key must be 1 to 255 printable ASCII characters."""

    code = "idempotency_key_invalid"


class AmountInvalid(ValidationFailed):
    """The amount must be a decimal number greater than zero."""

    code = "amount_invalid"


class AmountTooLarge(ValidationFailed):
    """The amount is larger than a payment may be."""

    code = "amount_too_large"


class AmountPrecision(ValidationFailed):
    """The amount has more decimals than its currency allows."""

    code = "amount_precision"


class CurrencyUnsupported(ValidationFailed):
    """That currency is not accepted."""

    code = "currency_unsupported"


class CustomerPhoneInvalid(ValidationFailed):
    """The customer phone must be 10 digits, or + and 8 to 15 digits."""

    code = "customer_phone_invalid"


class MetadataTooLarge(ValidationFailed):
    """The metadata is larger than allowed."""

    code = "metadata_too_large"


#: Code -> class, for the body validators (``ValidationFailed`` covers every other refusal).
REQUEST_ERRORS: Final[Mapping[str, type[ValidationFailed]]] = {
    error.code: error
    for error in (
        AmountInvalid,
        AmountTooLarge,
        AmountPrecision,
        CurrencyUnsupported,
        CustomerPhoneInvalid,
        MetadataTooLarge,
    )
}

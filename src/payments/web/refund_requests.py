"""The JSON body of ``POST /api/v1/refunds/initiate``, read as exactly as the payment writes' bodies.

The amount, id and text rules are the payment bodies' own (``web/payment_requests.py``): an amount is
a decimal string or a JSON number read as ``Decimal`` (``amount_invalid``), the reason is 3 to 100
characters without control characters, and unknown fields are refused. The amount's precision needs
the payment's currency, which the body does not carry, so ``refund_money`` checks it once the payment
has been read (``amount_precision``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from payments.domain.gateway import RefundSpeed
from payments.domain.money import Money
from payments.pipeline.settings import PaymentSettings
from payments.web.errors import AmountPrecision
from payments.web.payment_requests import Amount, Id, Name, refusal


class InitiateRefundBody(BaseModel):
    """``POST /api/v1/refunds/initiate``."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, alias_generator=to_camel)

    payment_id: Id
    amount: Amount
    #: A name's bounds: 3 to 100 characters, none of them control characters.
    reason: Name
    # A Literal, not the enum: strict validation of a parsed dict would want an enum instance.
    speed: Literal["STANDARD", "INSTANT"] = "STANDARD"

    @property
    def refund_speed(self) -> RefundSpeed:
        return RefundSpeed(self.speed)


def parse_initiate(body: dict[str, Any], limits: PaymentSettings) -> InitiateRefundBody:
    """A valid initiate body, or the precise ``ValidationFailed`` for its first problem."""
    try:
        return InitiateRefundBody.model_validate(body, context={"payments": limits})
    except ValidationError as error:
        raise refusal(error) from None


def refund_money(amount: Decimal, currency: str) -> Money:
    """``amount`` in the payment's currency, or ``AmountPrecision``: ``Money`` would round it silently."""
    quantum = Decimal(1).scaleb(-Money.places(currency))
    if amount.quantize(quantum) != amount:
        raise AmountPrecision(f"amount: has more decimals than {currency} allows")
    return Money(amount, currency)

"""Money: a Decimal amount in a currency, rounded to the currency's minor unit. Never a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from payments.domain.errors import ValidationFailed

#: Digits after the decimal point per ISO 4217 currency; a currency not listed is refused.
MINOR_UNITS: Final = {
    "INR": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AED": 2,
    "SGD": 2,
    "AUD": 2,
    "CAD": 2,
    "JPY": 0,
}


class CurrencyMismatch(ValidationFailed):
    """Amounts in different currencies cannot be combined."""

    code = "currency_mismatch"


class InvalidAmount(ValidationFailed):
    """The amount is not a valid amount of money."""

    code = "invalid_amount"


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount in one currency; arithmetic across currencies raises ``CurrencyMismatch``."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float) or not isinstance(self.amount, Decimal):
            raise InvalidAmount(f"amounts must be Decimal or str, not {type(self.amount).__name__}")
        if self.currency not in MINOR_UNITS:
            raise ValidationFailed(f"unsupported currency {self.currency!r}")
        if not self.amount.is_finite():
            raise InvalidAmount("the amount must be a finite number")
        quantum = Decimal(1).scaleb(-MINOR_UNITS[self.currency])
        object.__setattr__(self, "amount", self.amount.quantize(quantum, rounding=ROUND_HALF_EVEN))

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """``Money.of("10.50", "INR")``; a str or int is read exactly, a float is refused."""
        if isinstance(amount, float):
            raise InvalidAmount("amounts must be Decimal or str, not float")
        try:
            return cls(Decimal(amount), currency)
        except InvalidOperation:
            raise InvalidAmount(f"not a number: {amount!r}") from None

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @staticmethod
    def places(currency: str) -> int:
        """How many decimals ``currency`` has (2 for INR)."""
        if currency not in MINOR_UNITS:
            raise ValidationFailed(f"unsupported currency {currency!r}")
        return MINOR_UNITS[currency]

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same(other).amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same(other).amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same(other).amount

    def is_positive(self) -> bool:
        return self.amount > 0

    def _same(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} and {other.currency} cannot be combined")
        return other

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

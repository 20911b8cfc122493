from __future__ import annotations

from decimal import Decimal

import pytest

from payments.domain.errors import ValidationFailed
from payments.domain.money import CurrencyMismatch, InvalidAmount, Money


def test_money_is_rounded_to_the_currency_minor_unit():
    assert Money.of("10.005", "INR").amount == Decimal("10.00")
    assert Money.of("10.015", "INR").amount == Decimal("10.02")
    assert Money.of("100", "JPY").amount == Decimal("100")
    assert str(Money.of(5, "INR")) == "5.00 INR"


def test_a_float_is_never_money():
    with pytest.raises(InvalidAmount):
        Money.of(0.1, "INR")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money(0.1, "INR")  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", ["abc", "NaN", "Infinity"])
def test_something_that_is_not_a_finite_number_is_refused(amount):
    with pytest.raises(InvalidAmount):
        Money.of(amount, "INR")


def test_an_unknown_currency_is_refused():
    with pytest.raises(ValidationFailed, match="unsupported currency"):
        Money.of("1", "XYZ")


def test_arithmetic_and_comparison_stay_within_one_currency():
    total = Money.of("10.50", "INR") + Money.of("0.25", "INR")

    assert total == Money.of("10.75", "INR")
    assert total - Money.of("10.75", "INR") == Money.zero("INR")
    assert Money.of("1", "INR") < Money.of("2", "INR") <= Money.of("2.00", "INR")
    assert Money.of("3", "INR") > Money.of("2", "INR") >= Money.of("2", "INR")
    assert Money.of("0.01", "INR").is_positive()
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "INR") + Money.of("1", "USD")
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "INR") < Money.of("1", "USD")

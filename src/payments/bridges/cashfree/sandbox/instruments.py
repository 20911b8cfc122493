"""Order Pay's ``payment_method``: parse it and decide what a sandbox test instrument does.

Test instruments (FACTS §3; the failing ones are this sandbox's own convention):

| method | instrument | outcome |
|---|---|---|
| UPI collect | ``testsuccess@gocash`` | SUCCESS |
| UPI collect | ``testfailure@gocash`` | FAILED (``TRANSACTION_DECLINED``) |
| card | ``4111111111111111``, ``4838305610460100`` | SUCCESS |
| card | ``4000000000000002`` | FAILED |
| netbanking | bank code ``3087`` | SUCCESS |
| netbanking | bank code ``3088`` | FAILED |

Anything else (another VPA, UPI ``link``/``qrcode``, another card or bank) stays PENDING until
``POST /simulate`` decides it. Codes for these fields use the leaf name (``card_cvv_missing``), as
Cashfree's own examples do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from payments.bridges.cashfree.sandbox import validation as check
from payments.bridges.cashfree.sandbox.errors import bad_value, invalid, missing
from payments.bridges.cashfree.sandbox.states import PaymentStatus

SUCCESS, FAILED = PaymentStatus.SUCCESS, PaymentStatus.FAILED
UPI_OUTCOMES: Final = {"testsuccess@gocash": SUCCESS, "testfailure@gocash": FAILED}
CARD_OUTCOMES: Final = {"4111111111111111": SUCCESS, "4838305610460100": SUCCESS, "4000000000000002": FAILED}
NETBANKING_OUTCOMES: Final = {3087: SUCCESS, 3088: FAILED}
#: Card networks by the first digit of the number.
CARD_NETWORKS: Final = {"4": "visa", "5": "mastercard", "6": "rupay", "3": "amex"}
DIGITS = {n: re.compile(rf"^\d{{{n}}}$") for n in (2, 4)}
CARD_NUMBER: Final = re.compile(r"^\d{12,19}$")
CVV: Final = re.compile(r"^\d{3,4}$")
BANK_NAME: Final = re.compile(r"^[A-Z]{5}$")


@dataclass(frozen=True)
class Instrument:
    method: str  #: ``upi``, ``card`` or ``netbanking``
    channel: str
    details: dict[str, Any]  #: what ``payment_method.<method>`` shows afterwards
    group: str  #: Cashfree's ``payment_group``
    outcome: PaymentStatus | None  #: None: pending until /simulate


def parse_instrument(body: Mapping[str, Any]) -> Instrument:
    """The one method in ``payment_method``; 400 for anything the sandbox cannot take."""
    methods = check.sub_object(body, "payment_method", required=True)
    assert methods is not None  # required=True raises instead of returning None
    if len(methods) != 1:
        raise bad_value("payment_method", "must hold exactly one method")
    ((method, data),) = methods.items()
    parser = _PARSERS.get(method)
    if parser is None:
        raise invalid("payment_method_invalid", "the sandbox takes card, upi and netbanking")
    if not isinstance(data, dict):
        raise bad_value(method, "must be an object")
    return parser(data)


def _upi(data: dict[str, Any]) -> Instrument:
    channel = check.choice(data, "channel", frozenset({"collect", "link", "qrcode"}))
    upi_id = check.text(data, "upi_id", lengths=(3, 100))
    if channel == "collect" and upi_id is None:
        raise missing("upi_id")
    details = {"channel": channel} | ({"upi_id": upi_id} if upi_id else {})
    outcome = UPI_OUTCOMES.get(upi_id or "") if channel == "collect" else None
    return Instrument("upi", channel, details, "upi", outcome)


def _card(data: dict[str, Any]) -> Instrument:
    channel = check.choice(data, "channel", frozenset({"link", "post"}))
    number = str(check.text(data, "card_number", lengths=(12, 19), required=True, pattern=CARD_NUMBER))
    check.text(data, "card_expiry_mm", lengths=(2, 2), required=True, pattern=DIGITS[2])
    check.text(data, "card_expiry_yy", lengths=(2, 2), required=True, pattern=DIGITS[2])
    check.text(data, "card_cvv", lengths=(3, 4), required=True, pattern=CVV)
    details = {
        "channel": channel,
        "card_number": "X" * (len(number) - 4) + number[-4:],
        "card_network": CARD_NETWORKS.get(number[0], "visa"),
        "card_type": "credit_card",
        "card_country": "IN",
        "card_bank_name": "TEST Bank",
    }
    return Instrument("card", channel, details, "credit_card", CARD_OUTCOMES.get(number))


def _netbanking(data: dict[str, Any]) -> Instrument:
    channel = check.choice(data, "channel", frozenset({"link", "post"}))
    code = data.get("netbanking_bank_code")
    name = check.text(data, "netbanking_bank_name", lengths=(5, 5), pattern=BANK_NAME)
    if code is None and name is None:
        raise missing("netbanking_bank_code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int) or not 1000 <= code <= 9999):
        raise bad_value("netbanking_bank_code", "must be a four-digit number")
    details = {"channel": channel, "netbanking_bank_code": code, "netbanking_bank_name": name or "TESTR"}
    details = {key: value for key, value in details.items() if value is not None}
    return Instrument("netbanking", channel, details, "net_banking", NETBANKING_OUTCOMES.get(code or 0))


_PARSERS: Final[Mapping[str, Callable[[dict[str, Any]], Instrument]]] = {
    "upi": _upi,
    "card": _card,
    "netbanking": _netbanking,
}

"""The e2e run's logs hold no secret and no customer's personal data.

Runs last in the e2e directory (``conftest.py`` orders it), and reads every line the run's in-process
stacks logged (``session_log.py``): the configured secrets, every bearer token the stacks minted, and
the customers' emails, phones and names of the flows must appear nowhere. It drives one whole payment
of its own first, so it tests something even when run alone.
"""

from __future__ import annotations

import re
from typing import Final

from tests.e2e.stack import ISSUED_TOKENS, SECRET
from tests.waiting import eventually

USER: Final = "user-log-audit"
#: The e2e customers all have addresses at example.com; a masked one reads ``a***@example.com``.
UNMASKED_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@example\.com")
#: Indian mobile numbers as the flows use them, standing alone (not inside a hex id or a longer number).
UNMASKED_PHONE: Final = re.compile(r"(?<![\w+])[6-9]\d{9}(?!\w)")
#: The names the flows give their customers.
NAMES: Final = ("Asha Rao", "Priya ")


async def test_the_e2e_runs_logs_hold_no_secret_token_or_customer_data(stack, session_log):
    paid = await stack.paid(USER)
    refund = await stack.refund(USER, paid["paymentId"], "100.00")
    assert refund.status in (201, 202), await refund.text()
    await eventually(lambda: stack.mail.messages, timeout=60, what="the flow's emails")

    text = session_log.text()
    lines = text.splitlines()
    assert len(lines) > 20, "the run logged almost nothing: the capture is not working"
    secrets = {
        "Cashfree secret": SECRET,
        "JWT secret": stack.settings.security.jwt_secret.get_secret_value(),
        "encryption key": stack.settings.security.payment_encryption_key.get_secret_value(),
    }
    for name, value in secrets.items():
        assert value not in text, f"the {name} is in the logs"
    leaked_tokens = [token[:16] for token in ISSUED_TOKENS if token in text]
    assert ISSUED_TOKENS
    assert leaked_tokens == [], "bearer tokens in the logs"
    assert UNMASKED_EMAIL.findall(text) == []
    assert UNMASKED_PHONE.findall(text) == []
    assert [name for name in NAMES if name in text] == []

"""Cashfree's webhooks behind the domain's ``GatewayWebhooks`` port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from payments.bridges.cashfree.signature import WebhookVerifier
from payments.bridges.cashfree.webhooks import header, parse_webhook
from payments.domain.webhook.intake import WebhookIdentity
from payments.domain.webhook.notification import GatewayNotification

#: Payload versions our lenient models were written for (FACTS §7).
KNOWN_VERSIONS: Final = frozenset({"2023-08-01", "2025-01-01"})
SIGNATURE_HEADER: Final = "x-webhook-signature"
TIMESTAMP_HEADER: Final = "x-webhook-timestamp"


class CashfreeWebhooks:
    provider = "cashfree"
    known_versions = KNOWN_VERSIONS

    def __init__(self, verifier: WebhookVerifier) -> None:
        self._verifier = verifier

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> WebhookIdentity:
        timestamp, signature = header(headers, TIMESTAMP_HEADER), header(headers, SIGNATURE_HEADER)
        self._verifier.verify(body=body, timestamp=timestamp, signature=signature)
        parsed = parse_webhook(body, headers)
        return WebhookIdentity(
            dedup_key=parsed.dedup_key, event_type=parsed.event.type, version=parsed.version
        )

    def read(self, body: bytes, headers: Mapping[str, str]) -> GatewayNotification:
        return parse_webhook(body, headers).to_notification()

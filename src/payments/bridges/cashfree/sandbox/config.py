"""The sandbox's configuration: a plain dataclass, so the bridge never reads ``Settings`` itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

#: The versions the sandbox answers by default (FACTS §1, "→ Us").
DEFAULT_API_VERSIONS: Final = frozenset({"2023-08-01", "2025-01-01", "2026-01-01"})


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How the local Cashfree behaves; the composition root builds it from ``SandboxSettings``."""

    app_id: str
    secret_key: str
    #: Where webhooks go when an order has no ``order_meta.notify_url`` (and every settlement webhook).
    webhook_url: str
    #: Sandbox seconds per real second.
    clock_speed: float = 1.0
    #: Sandbox seconds from Order Pay with a test instrument to the attempt's outcome.
    attempt_delay_seconds: float = 0.0
    api_versions: frozenset[str] = DEFAULT_API_VERSIONS
    #: Payload and ``x-webhook-version`` of the webhooks it sends.
    webhook_version: str = "2025-01-01"
    #: Cashfree's sandbox per-minute limits (FACTS §9); tests that poll hard may switch them off.
    enforce_rate_limits: bool = True

    def __post_init__(self) -> None:
        if self.clock_speed <= 0:
            raise ValueError("clock_speed must be positive")
        if self.attempt_delay_seconds < 0:
            raise ValueError("attempt_delay_seconds must not be negative")

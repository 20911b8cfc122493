"""A local Cashfree: the PG API our client calls, with Cashfree's rules, errors and webhooks.

``create_sandbox_app(SandboxConfig(...))`` returns an aiohttp app: the PG API under ``/pg`` (the client's
base URL is ``http://127.0.0.1:8090/pg``) and a control API under ``/_sandbox`` (see ``control``).
Facts it follows: ``shared/cashfree/FACTS.md``; behaviour where Cashfree is unconfirmed, test
instruments and the control API: ``docs/sandbox.md``. State lives in the app; nothing is global.
"""

from __future__ import annotations

from payments.bridges.cashfree.sandbox.app import create_sandbox_app
from payments.bridges.cashfree.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app"]

"""Every log line the e2e run's in-process stacks write, as production writes them, kept in one file.

The handler is the service's own (JSON, context ids, masking of secrets and personal data), so what
the file holds is what a log shipper would receive. ``test_logs_hold_no_secrets.py`` reads it last.
The root logger is lowered to INFO for the run (the stacks otherwise log only warnings), so the lines
of every request, Cashfree call and agent decision are in it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from payments.pipeline.logging import ContextFilter, PaymentsJsonFormatter, SensitiveDataFilter

LEVEL: Final = logging.INFO


@dataclass(frozen=True)
class SessionLog:
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8") if self.path.exists() else ""


@contextmanager
def capturing(path: Path) -> Iterator[SessionLog]:
    """Write every record reaching the root logger to ``path`` until the block ends."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.addFilter(ContextFilter())
    handler.addFilter(SensitiveDataFilter())
    handler.setFormatter(PaymentsJsonFormatter(service="payments-e2e", environment="test"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level or logging.WARNING, LEVEL))
    try:
        yield SessionLog(path)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(level)

"""The port that turns an email's context into its subject and bodies (``bridges/templates``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from payments.domain.notification.model import EmailKind


@dataclass(frozen=True)
class RenderedEmail:
    #: One line: no line breaks, so it cannot smuggle headers in.
    subject: str
    text: str
    html: str


class EmailRenderer(Protocol):
    def render(self, kind: EmailKind, context: Mapping[str, Any]) -> RenderedEmail:
        """The email of ``kind`` for ``context`` (from ``domain/notification/content.py``).

        A context missing a field the templates use is a bug, not bad input: it raises.
        """
        ...

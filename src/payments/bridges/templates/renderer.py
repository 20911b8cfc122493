"""``EmailRenderer`` on Jinja2: HTML autoescaped, a missing variable an error, the subject one line.

Templates ship as package data (``payments.bridges.templates``, ``email/*``). Each kind has three:
``<kind>.subject`` (one line), ``<kind>.txt`` (the plain-text part) and ``<kind>.html`` (the HTML
part, on ``_layout.html``: tables and inline styles, which is what mail clients render reliably).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from payments.domain.notification.model import EmailKind
from payments.domain.notification.rendering import RenderedEmail


def email_environment() -> Environment:
    """The Jinja2 environment of the email templates (autoescape for ``.html`` only)."""
    return Environment(
        loader=PackageLoader("payments.bridges", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class JinjaEmailRenderer:
    """Renders every kind from its three templates; templates are loaded once and cached."""

    def __init__(self, environment: Environment | None = None) -> None:
        self._environment = environment or email_environment()

    def render(self, kind: EmailKind, context: Mapping[str, Any]) -> RenderedEmail:
        name = kind.template
        subject = self._environment.get_template(f"{name}.subject").render(context)
        return RenderedEmail(
            # Whitespace (a line break above all) collapses: a subject is one header line.
            subject=" ".join(subject.split()),
            text=self._environment.get_template(f"{name}.txt").render(context),
            html=self._environment.get_template(f"{name}.html").render(context),
        )

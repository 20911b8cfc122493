"""The Grafana dashboards under ``docker/grafana`` as data: their files, panels and PromQL queries.

``dashboard_queries()`` maps ``"file:panel title:refId"`` to every panel target's expression, with
Grafana's own variables (``$__rate_interval`` and friends) replaced by a fixed window, so that promtool
can parse it and a running Prometheus can evaluate it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final, TypeAlias

from tests.observability import DOCKER

GRAFANA: Final = DOCKER / "grafana"
DASHBOARDS: Final = GRAFANA / "dashboards"
PROVISIONING: Final = GRAFANA / "provisioning"
#: What Grafana's interval variables stand for outside Grafana: twenty 15 s scrapes, enough for rate().
VARIABLE_WINDOW: Final = "5m"
#: ``$__rate_interval`` or ``${__rate_interval}``, likewise ``__interval`` and ``__range``; ``\b`` keeps
#: ``$__interval_ms`` and ``$__range_s`` (numbers, not durations) from matching.
_VARIABLE: Final = re.compile(r"\$\{?__(?:rate_interval|interval|range)\b\}?")

Dashboard: TypeAlias = dict[str, Any]
Panel: TypeAlias = dict[str, Any]


def dashboard_files() -> list[Path]:
    """The dashboard JSON files the provider loads, sorted by name."""
    return sorted(DASHBOARDS.glob("*.json"))


def load_dashboard(path: Path) -> Dashboard:
    loaded: Dashboard = json.loads(path.read_text())
    return loaded


def panels_of(dashboard: Dashboard) -> list[Panel]:
    """Every panel that shows data; rows are containers, and a collapsed row keeps its panels inside."""
    found: list[Panel] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def without_grafana_variables(expr: str) -> str:
    """``expr`` as plain PromQL: Grafana's interval variables replaced by ``VARIABLE_WINDOW``."""
    return _VARIABLE.sub(VARIABLE_WINDOW, expr)


def dashboard_queries() -> dict[str, str]:
    """``"file:panel title:refId"`` -> the target's PromQL, with Grafana's variables substituted."""
    queries: dict[str, str] = {}
    for path in dashboard_files():
        for panel in panels_of(load_dashboard(path)):
            for target in panel.get("targets", []):
                key = f"{path.name}:{panel.get('title', '')}:{target.get('refId', '')}"
                queries[key] = without_grafana_variables(target.get("expr", ""))
    return queries

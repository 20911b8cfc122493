"""What the alert rules and dashboards are checked against: our exported series, and promtool.

``exported_series()`` lists every series name the code can export (from ``metrics.create``, with the
suffixes the client library adds); ``series_in(expr)`` finds the names a PromQL expression reads;
``check_promql(exprs)`` has Debian's ``promtool`` parse expressions (as recording rules, the one way it
parses PromQL without a server) and returns its complaints.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import yaml
from prometheus_client import CollectorRegistry

from payments.pipeline import metrics

REPO: Final = Path(__file__).resolve().parents[1]
DOCKER: Final = REPO / "docker"
PROMTOOL: Final = shutil.which("promtool") or "/usr/bin/promtool"
#: Series Prometheus itself adds to every scrape target.
SCRAPE_SERIES: Final = frozenset({"up", "scrape_duration_seconds", "scrape_samples_scraped"})

_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}
#: Our metric names all start with the service prefix; Prometheus's own are listed in SCRAPE_SERIES.
_SERIES: Final = re.compile(r"\b(payments_[a-z0-9_]+|up|scrape_[a-z_]+)\b")


def exported_series() -> frozenset[str]:
    """Every series name ``metrics.create`` registers, as Prometheus sees it after a scrape."""
    registry = CollectorRegistry()
    metrics.create(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(f"{family.name}{suffix}" for suffix in _SUFFIXES[family.type])
    return frozenset(names)


def series_in(expr: str) -> set[str]:
    """The series names an expression reads (label values in quotes are not names)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(_SERIES.findall(without_strings))


def unknown_series(exprs: Iterable[str]) -> dict[str, set[str]]:
    """Expression -> the names it reads that the code does not export (empty when all are known)."""
    known = exported_series() | SCRAPE_SERIES
    found = {expr: series_in(expr) - known for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


def check_promql(exprs: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check rules`` over ``exprs`` (name -> PromQL) as recording rules."""
    rules = [{"record": f"check:{index}", "expr": expr} for index, expr in enumerate(exprs.values())]
    document = {"groups": [{"name": "expressions", "rules": rules}]}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "expressions.yml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return subprocess.run(
            [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, check=False
        )

"""The Grafana provisioning and dashboards, checked without a Grafana: the JSON, the layout, and every
panel query against promtool's parser and the series the code exports.

A live test evaluates the same queries (``tests.grafana.dashboard_queries``) on a running Prometheus.
"""

from __future__ import annotations

import re
from collections import Counter
from itertools import combinations
from typing import Any

import yaml

from tests.grafana import (
    PROVISIONING,
    Dashboard,
    Panel,
    dashboard_files,
    dashboard_queries,
    load_dashboard,
    panels_of,
)
from tests.observability import check_promql, unknown_series

EXPECTED = {
    "payments.json",
    "webhooks.json",
    "queues.json",
    "refunds.json",
    "fraud.json",
    "reconciliation.json",
}
#: Where docker/compose.yml mounts docker/grafana/dashboards inside the Grafana container.
MOUNTED_DASHBOARDS = "/var/lib/grafana/dashboards"
PANEL_TYPES = {"timeseries", "stat", "bargauge"}
#: The window of each rate() in a raw (unsubstituted) expression.
RATE_WINDOW = re.compile(r"\brate\([^\[]*\[([^\]]*)\]")


def all_dashboards() -> dict[str, Dashboard]:
    return {path.name: load_dashboard(path) for path in dashboard_files()}


def all_panels() -> dict[str, Panel]:
    """``"file:panel title"`` -> panel, across every dashboard."""
    return {
        f"{name}:{panel.get('title')}": panel
        for name, dashboard in all_dashboards().items()
        for panel in panels_of(dashboard)
    }


def provisioned_datasource() -> dict[str, Any]:
    document = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = document["datasources"]
    return dict(datasource)


def overlapping(panels: list[Panel]) -> list[tuple[str, str]]:
    """Pairs of panel titles whose grid rectangles share at least one cell."""

    def cells(panel: Panel) -> tuple[range, range]:
        grid = panel["gridPos"]
        return range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])

    pairs = []
    for first, second in combinations(panels, 2):
        (x1, y1), (x2, y2) = cells(first), cells(second)
        if set(x1) & set(x2) and set(y1) & set(y2):
            pairs.append((first["title"], second["title"]))
    return pairs


def test_the_six_dashboards_exist() -> None:
    assert {path.name for path in dashboard_files()} == EXPECTED


def test_every_dashboard_parses_with_a_unique_uid_and_title() -> None:
    dashboards = all_dashboards().values()
    uids = Counter(dashboard.get("uid") for dashboard in dashboards)
    titles = Counter(dashboard.get("title") for dashboard in dashboards)
    assert None not in uids
    assert None not in titles
    assert [uid for uid, n in uids.items() if n > 1] == []
    assert [title for title, n in titles.items() if n > 1] == []


def test_every_dashboard_shares_the_house_settings() -> None:
    settings = {
        name: (dashboard["schemaVersion"], dashboard["tags"], dashboard["refresh"], dashboard["time"]["from"])
        for name, dashboard in all_dashboards().items()
    }
    assert settings == dict.fromkeys(EXPECTED, (39, ["payments"], "30s", "now-6h"))


def test_every_dashboard_has_four_to_eight_panels_with_unique_titles() -> None:
    for name, dashboard in all_dashboards().items():
        titles = [panel.get("title") for panel in panels_of(dashboard)]
        assert 4 <= len(titles) <= 8, name
        assert len(set(titles)) == len(titles), name


def test_every_panel_reads_the_provisioned_datasource() -> None:
    datasource = provisioned_datasource()
    expected = {"type": datasource["type"], "uid": datasource["uid"]}
    wrong = {key: panel.get("datasource") for key, panel in all_panels().items()}
    assert {key: found for key, found in wrong.items() if found != expected} == {}
    targets = {
        f"{key}:{t.get('refId')}": t.get("datasource")
        for key, p in all_panels().items()
        for t in p["targets"]
    }
    assert {key: found for key, found in targets.items() if found not in (None, expected)} == {}


def test_every_panel_says_what_it_shows_and_has_a_query() -> None:
    lacking = {
        key: problem
        for key, panel in all_panels().items()
        for problem, missing in (
            ("description", not str(panel.get("description", "")).strip()),
            ("targets", not panel.get("targets")),
            ("type", panel.get("type") not in PANEL_TYPES),
            ("unit", not panel.get("fieldConfig", {}).get("defaults", {}).get("unit")),
            ("gridPos", not panel.get("gridPos")),
        )
        if missing
    }
    assert lacking == {}


def test_every_target_has_an_expression_a_legend_and_a_ref_id() -> None:
    incomplete = {
        f"{key}:{index}": sorted({"expr", "legendFormat", "refId"} - {k for k, v in target.items() if v})
        for key, panel in all_panels().items()
        for index, target in enumerate(panel["targets"])
    }
    assert {key: missing for key, missing in incomplete.items() if missing} == {}


def test_ref_ids_are_unique_within_a_panel() -> None:
    repeated = {
        key: ref_ids
        for key, panel in all_panels().items()
        if len(set(ref_ids := [target["refId"] for target in panel["targets"]])) != len(ref_ids)
    }
    assert repeated == {}


def test_panels_do_not_overlap() -> None:
    overlaps = {name: overlapping(panels_of(dashboard)) for name, dashboard in all_dashboards().items()}
    assert {name: pairs for name, pairs in overlaps.items() if pairs} == {}


def test_panels_fit_the_grid() -> None:
    outside = [
        key for key, panel in all_panels().items() if panel["gridPos"]["x"] + panel["gridPos"]["w"] > 24
    ]
    assert outside == []


def test_rate_windows_use_grafanas_rate_interval() -> None:
    # $__rate_interval is at least four scrapes, so rate() never sees fewer than two samples when zoomed in.
    windows = {
        f"{key}:{target['refId']}": RATE_WINDOW.findall(target["expr"])
        for key, panel in all_panels().items()
        for target in panel["targets"]
    }
    odd = {key: found for key, found in windows.items() if set(found) - {"$__rate_interval"}}
    assert odd == {}


def test_every_query_is_valid_promql() -> None:
    queries = dashboard_queries()
    assert len(queries) == sum(len(panel["targets"]) for panel in all_panels().values())
    assert [key for key, expr in queries.items() if "$" in expr] == []
    checked = check_promql(queries)
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_every_query_reads_only_exported_series() -> None:
    assert unknown_series(dashboard_queries().values()) == {}


def test_the_datasource_is_the_default_read_only_prometheus() -> None:
    datasource = provisioned_datasource()
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    assert datasource["editable"] is False


def test_the_dashboard_provider_reads_where_compose_mounts_the_dashboards() -> None:
    document = yaml.safe_load((PROVISIONING / "dashboards" / "payments.yml").read_text())
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "CommDesk Payments"
    assert provider["options"]["path"] == MOUNTED_DASHBOARDS

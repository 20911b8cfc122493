"""The Prometheus alerts and the Alertmanager config, checked with Debian's promtool and amtool.

Syntax and the rules' own unit tests (``docker/prometheus/alerts.test.yml``) are promtool's job; this
module adds what promtool cannot know: that every alert has a case where it fires and one where it
stays quiet, that rules read only series the code exports, that each alert links to a runbook
section that exists, and that Alertmanager posts to the app's intake with its token.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.observability import DOCKER, PROMTOOL, REPO, unknown_series

PROMETHEUS = DOCKER / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
ALERTMANAGER = DOCKER / "alertmanager" / "alertmanager.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
#: The app's intake (``ALERTMANAGER_PATH`` in src/payments/web/auth.py).
INTAKE_PATH = "/api/v1/admin/alerts/alertmanager"
#: Where compose mounts the secret holding ``ALERTMANAGER_TOKEN``.
TOKEN_FILE = "/run/secrets/alertmanager_token"
SEVERITIES = {"critical", "warning"}
ALERT_NAME = re.compile(r"Payments[A-Z][A-Za-z]+")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def rule_tests() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERT_TESTS.read_text())
    return [case for test in document["tests"] for case in test.get("alert_rule_test", [])]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> set[str]:
    """Every heading anchor of the runbook; a repeated heading gets ``-1``, ``-2``, ... as on GitHub."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else HEADING.match(line)
        if match:
            slug = github_slug(match.group(1))
            anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
            seen[slug] += 1
    return anchors


def test_promtool_accepts_the_alert_rules() -> None:
    result = run(PROMTOOL, "check", "rules", ALERTS.name, cwd=PROMETHEUS)
    assert result.returncode == 0, output(result)


def test_the_alert_rules_pass_their_unit_tests() -> None:
    result = run(PROMTOOL, "test", "rules", ALERT_TESTS.name, cwd=PROMETHEUS)
    assert result.returncode == 0, output(result)


def test_promtool_accepts_the_prometheus_config_and_its_rule_file() -> None:
    # rule_files names alerts.yml relative to prometheus.yml, as it is mounted in the container.
    result = run(PROMTOOL, "check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, output(result)
    assert "alerts.yml" in result.stdout, output(result)


def test_prometheus_scrapes_both_jobs_and_sends_to_alertmanager() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"payments-web", "payments-worker"}
    assert jobs["payments-web"]["static_configs"] == [{"targets": ["web:8080"]}]
    (discovery,) = jobs["payments-worker"]["dns_sd_configs"]
    assert (discovery["names"], discovery["type"], discovery["port"]) == (["worker"], "A", 9101)


def test_amtool_accepts_the_alertmanager_config() -> None:
    result = run(AMTOOL, "check-config", ALERTMANAGER.name, cwd=ALERTMANAGER.parent)
    assert result.returncode == 0, output(result)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    cases = rule_tests()
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert names - firing == set(), "alerts with no case where they fire"
    assert names - quiet == set(), "alerts with no case where they stay quiet"
    assert (firing | quiet) - names == set(), "unit tests of alerts that do not exist"


def test_alert_rules_read_only_exported_series() -> None:
    assert unknown_series(rule["expr"] for rule in alert_rules()) == {}


def test_every_alert_has_severity_team_summary_description_and_runbook_link() -> None:
    anchors = runbook_anchors()
    for rule in alert_rules():
        name, labels, annotations = rule["alert"], rule["labels"], rule["annotations"]
        assert ALERT_NAME.fullmatch(name), name
        assert labels["severity"] in SEVERITIES, name
        assert labels["team"] == "payments", name
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert (page, anchor) == ("docs/runbook.md", name.lower()), name
        assert anchor in anchors, f"{name}: no heading ### {name} in docs/runbook.md"


def test_alertmanager_posts_every_alert_to_the_app_intake_with_its_token() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {receiver["name"]: receiver for receiver in config["receivers"]}
    assert config["route"]["receiver"] == "payments-admin"
    assert {route["receiver"] for route in config["route"].get("routes", [])} <= {"payments-admin"}
    (webhook,) = receivers["payments-admin"]["webhook_configs"]
    assert urlsplit(webhook["url"]).path == INTAKE_PATH
    assert webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization.get("type", "Bearer") == "Bearer"
    assert authorization["credentials_file"] == TOKEN_FILE
    assert "credentials" not in authorization, "the token belongs in the secret file, not the config"


def test_inhibit_rules_name_alerts_that_exist() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    names = {rule["alert"] for rule in alert_rules()}
    for rule in config.get("inhibit_rules", []):
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            label, _, value = matcher.partition("=")
            if label == "alertname":
                assert value.strip('"') in names, matcher

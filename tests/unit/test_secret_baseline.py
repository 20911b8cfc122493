"""The secret scan's baseline holds no secret: every entry in it was audited as a test value or a
documented placeholder (``scripts/scan-secrets.sh`` fails on anything found beyond it)."""

from __future__ import annotations

import json
from pathlib import Path

BASELINE = Path(__file__).resolve().parents[2] / ".secrets.baseline"


def test_every_baseline_entry_is_audited_as_not_a_secret():
    results = json.loads(BASELINE.read_text())["results"]
    entries = [(path, entry) for path, found in results.items() for entry in found]

    assert entries, "an empty baseline: the scan ran on nothing"
    unaudited = [
        f"{path}:{entry['line_number']}" for path, entry in entries if entry.get("is_secret") is not False
    ]
    assert unaudited == []


def test_no_entry_is_in_the_service_s_own_code():
    # Test values and documentation may look like secrets; the service's code never holds one.
    results = json.loads(BASELINE.read_text())["results"]

    in_code = [path for path in results if path.startswith("src/") and path.endswith(".py")]
    assert in_code == []

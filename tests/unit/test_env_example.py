from __future__ import annotations

from pathlib import Path

from payments.pipeline.settings import VARIABLES

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_variable_the_service_reads():
    listed = {
        line.split("=", 1)[0].strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }

    assert listed == set(VARIABLES)

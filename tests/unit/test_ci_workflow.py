"""The GitHub workflow (.github/workflows/ci.yml) runs what a developer runs, from pinned inputs.

The workflow cannot run here, so these tests read it: it parses; its test job goes through `.ci/run`,
the one entry point of local CI; every `make` target it names exists; every action and image it pulls
is pinned; the image job builds docker/Dockerfile; and Trivy fails that job on HIGH and CRITICAL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
MAKEFILE = ROOT / "Makefile"
CI_RUN = ROOT / ".ci" / "run"

#: `make audit`, `make -s test` where a command starts (a line, or after `;`, `&&`, `||`, `|`, `(`), not the
#: word in a list of packages: the first word after `make` and its options is the target.
MAKE_TARGET = re.compile(r"(?:^|[;&|(])[ \t]*make(?:[ \t]+-\S+)*[ \t]+([A-Za-z_][\w-]*)", re.MULTILINE)
#: A rule in the Makefile (`test: install services ...`), not a variable (`BIN := ...`).
MAKE_RULE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?!=)", re.MULTILINE)
#: A release tag (`v4`, `v4.2`, `0.35.0`) or a full commit id.
VERSION_TAG = re.compile(r"v?\d+(\.\d+){0,2}")
COMMIT = re.compile(r"[0-9a-f]{40}")
#: `.ci/run` or `bash .ci/run` where a command starts.
CI_RUN_COMMAND = re.compile(r"(?:^|[;&|(])[ \t]*(?:bash[ \t]+)?(?:\./)?\.ci/run\b", re.MULTILINE)
#: What runs the suite or a linter directly; the workflow leaves that to `.ci/run`.
TOOL_RUN_DIRECTLY = re.compile(r"\b(pytest|ruff|mypy|bandit|detect-secrets|coverage run)\b")
TRIVY = "aquasecurity/trivy-action"


@cache
def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "ci.yml is not a mapping"
    return loaded


def triggers() -> Any:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    spec = workflow()
    return spec["on"] if "on" in spec else spec.get(True)


def jobs() -> dict[str, Any]:
    return workflow()["jobs"]


def steps(job: str | None = None) -> Iterator[dict[str, Any]]:
    for name, spec in jobs().items():
        if job is None or name == job:
            yield from spec.get("steps", [])


def run_commands(job: str | None = None) -> list[str]:
    """Each `run:` script without its comment lines (a comment may name a command it does not run)."""
    return [
        "\n".join(line for line in step["run"].splitlines() if not line.lstrip().startswith("#"))
        for step in steps(job)
        if "run" in step
    ]


def action_steps(action: str) -> list[dict[str, Any]]:
    return [step for step in steps() if str(step.get("uses", "")).split("@")[0] == action]


def makefile_targets() -> set[str]:
    return set(MAKE_RULE.findall(MAKEFILE.read_text(encoding="utf-8")))


def test_workflow_runs_on_push_and_pull_request() -> None:
    on = triggers()
    assert on is not None, "ci.yml has no `on:`"
    assert {"push", "pull_request"} <= set(on)


def test_workflow_token_can_only_read_the_repository() -> None:
    assert workflow()["permissions"] == {"contents": "read"}
    for name, spec in jobs().items():
        assert spec.get("permissions", {"contents": "read"}) == {"contents": "read"}, name


def test_a_newer_push_cancels_the_run_it_supersedes() -> None:
    concurrency = workflow()["concurrency"]
    assert concurrency["cancel-in-progress"] is True
    assert "github." in concurrency["group"], "one group for every branch would cancel unrelated runs"


def test_test_job_goes_through_ci_run_like_local_ci() -> None:
    commands = run_commands("test")
    assert any(CI_RUN_COMMAND.search(command) for command in commands)
    assert "make test" in CI_RUN.read_text(encoding="utf-8")


def test_workflow_runs_no_linter_or_test_of_its_own() -> None:
    # What make test runs is defined once, in the Makefile; CI must not drift from it.
    direct = [command for command in run_commands() if TOOL_RUN_DIRECTLY.search(command)]
    assert direct == []


def test_every_make_target_run_is_defined_in_the_makefile() -> None:
    named = {target for command in run_commands() for target in MAKE_TARGET.findall(command)}
    named |= set(MAKE_TARGET.findall(CI_RUN.read_text(encoding="utf-8")))
    assert {"audit", "test"} <= named
    assert named - makefile_targets() == set()


def test_coverage_report_is_written_after_ci_run_and_uploaded() -> None:
    commands = run_commands("test")
    ci_run = next(i for i, command in enumerate(commands) if ".ci/run" in command)
    xml = next(i for i, command in enumerate(commands) if "coverage xml" in command)
    assert xml > ci_run
    uploads = action_steps("actions/upload-artifact")
    assert any("coverage.xml" in step["with"]["path"] for step in uploads)


def test_every_action_is_pinned_to_a_release_or_a_commit() -> None:
    used = [str(step["uses"]) for step in steps() if "uses" in step]
    assert used, "the workflow uses no action at all"
    for reference in used:
        if reference.startswith("./"):
            continue
        action, _, ref = reference.partition("@")
        assert VERSION_TAG.fullmatch(ref) or COMMIT.fullmatch(ref), f"{reference}: not a release or commit"
        if not action.startswith("actions/"):
            # Tags outside GitHub's own actions can be moved under us (trivy-action's were, in
            # March 2026); only a commit id stays put.
            assert COMMIT.fullmatch(ref), f"{reference}: a third-party action is pinned by commit"


def test_container_and_service_images_are_pinned() -> None:
    images = []
    for spec in jobs().values():
        container = spec.get("container")
        if container is not None:
            images.append(container if isinstance(container, str) else container["image"])
        images += [service["image"] for service in spec.get("services", {}).values()]
    assert images, "no job names a container or service image"
    for image in images:
        if "@sha256:" in image:
            continue
        _, separator, tag = image.rpartition(":")
        assert separator, f"{image}: no tag"
        assert "/" not in tag, f"{image}: no tag (a registry port is not one)"
        assert tag != "latest", f"{image}: latest moves"
        assert re.search(r"\d", tag), f"{image}: the tag names no version"


def test_image_job_builds_the_service_dockerfile() -> None:
    builds = [command for command in run_commands("image") if "docker build" in command]
    assert any(re.search(r"-f\s+docker/Dockerfile\b", command) for command in builds)
    assert (ROOT / "docker" / "Dockerfile").is_file()


def test_trivy_fails_the_job_on_high_and_critical_image_findings() -> None:
    scans = [step for step in action_steps(TRIVY) if step["with"].get("scan-type", "image") == "image"]
    assert scans, "no Trivy image scan"
    built = jobs()["image"]["env"]["IMAGE"]
    for step in scans:
        options = step["with"]
        assert str(options["exit-code"]) == "1"
        assert {"HIGH", "CRITICAL"} <= set(options["severity"].split(","))
        assert options["image-ref"] == built, "Trivy scans an image other than the one built"
        assert not step.get("continue-on-error", False)
    assert not jobs()["image"].get("continue-on-error", False)


def test_trivy_checks_the_docker_directory_for_misconfigurations() -> None:
    scans = [step for step in action_steps(TRIVY) if step["with"].get("scan-type") == "config"]
    assert [step["with"]["scan-ref"].rstrip("/") for step in scans] == ["docker"]
    assert all(str(step["with"]["exit-code"]) == "1" for step in scans)


def test_image_job_checks_the_compose_file_with_generated_secrets() -> None:
    commands = "\n".join(run_commands("image"))
    generate = commands.find("scripts/generate-secrets.sh")
    check = commands.find("docker compose -f docker/compose.yaml config")
    assert 0 <= generate < check, "compose config needs the secret files it names"
    assert (ROOT / "scripts" / "generate-secrets.sh").is_file()
    assert (ROOT / "docker" / "compose.yaml").is_file()

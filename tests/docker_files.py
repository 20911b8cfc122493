"""The files under ``docker/`` as data, read without a Docker engine: the compose file (services, their
environment, mounts and ports, and the settings an app service would load from them), the Dockerfile's
stages and instructions, the patterns of ``.dockerignore`` and ``.gitignore`` with the matching rules of
Docker and git, and ``scripts/generate-secrets.sh`` run into a directory of the caller's.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import yaml

from payments.pipeline.settings import Settings, load_settings

REPO: Final = Path(__file__).resolve().parents[1]
DOCKER: Final = REPO / "docker"
COMPOSE_FILE: Final = DOCKER / "compose.yaml"
DOCKERFILE: Final = DOCKER / "Dockerfile"
GENERATE_SECRETS: Final = REPO / "scripts" / "generate-secrets.sh"

Service: TypeAlias = dict[str, Any]


def generate_secrets(directory: Path) -> str:
    """Run scripts/generate-secrets.sh into ``directory``; its output."""
    done = subprocess.run(
        ["bash", str(GENERATE_SECRETS), str(directory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def load_compose() -> dict[str, Any]:
    """The compose file as compose reads it: YAML with its anchors and ``<<`` merge keys resolved."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def environment(service: Service) -> dict[str, str]:
    """A service's ``environment``, in either of compose's two forms, as a mapping of strings."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    return {name: str(value) for name, value in declared.items()}


def secret_targets(service: Service) -> dict[str, str]:
    """Where each of a service's secrets appears in its container: path -> the secret's name."""
    targets = {}
    for entry in service.get("secrets") or []:
        source, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry.get("target"))
        target = target or source
        targets[target if target.startswith("/") else f"/run/secrets/{target}"] = source
    return targets


def secret(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def compose_secret_files(compose: dict[str, Any]) -> dict[str, str]:
    """Top-level secret name -> its file, relative to docker/."""
    return {name: entry["file"] for name, entry in compose["secrets"].items()}


def settings_of(compose: dict[str, Any], name: str, secrets_dir: Path) -> Settings:
    """What ``payments`` in the container of ``name`` would load, the secrets read from ``secrets_dir``."""
    service = compose["services"][name]
    files = {
        target: str(secrets_dir / Path(compose["secrets"][source]["file"]).name)
        for target, source in secret_targets(service).items()
    }
    environ = {key: files.get(value, value) for key, value in environment(service).items()}
    return load_settings(environ)


def has_healthcheck(service: Service, stages: list[Stage]) -> bool:
    """An explicit, enabled check, or our image's own HEALTHCHECK."""
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return False
    if check.get("test"):
        return True
    own = stages[-1].named("HEALTHCHECK")
    return "build" in service and bool(own) and own[-1].arguments.upper() != "NONE"


def prometheus_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    return loaded


def scrape_job(name: str) -> dict[str, Any]:
    return next(job for job in prometheus_config()["scrape_configs"] if job["job_name"] == name)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    bind: bool  #: a path on the host (relative to docker/), not a named volume


def mounts(service: Service) -> list[Mount]:
    found = []
    for entry in service.get("volumes") or []:
        source, target = entry.split(":")[:2]
        found.append(Mount(source, target, bind=source.startswith((".", "/"))))
    return found


@dataclass(frozen=True)
class PublishedPort:
    host_ip: str
    host_port: int
    container_port: int


def published_ports(service: Service) -> list[PublishedPort]:
    """``ports:`` in the short syntax: ``[[IP:]HOST:]CONTAINER``; no IP means every interface (``""``)."""
    found = []
    for entry in service.get("ports") or []:
        parts = str(entry).split(":")
        host_ip = parts[0] if len(parts) == 3 else ""
        found.append(PublishedPort(host_ip, int(parts[-2] if len(parts) > 1 else 0), int(parts[-1])))
    return found


_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION_UNITS: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """A compose duration (``40s``, ``1m30s``) in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


# --- Dockerfile ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  #: upper case: FROM, RUN, COPY ...
    arguments: str  #: the rest, continuation lines joined

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ``CMD``/``ENTRYPOINT``/``HEALTHCHECK CMD``, else None."""
        text = self.arguments.split("CMD", 1)[1] if self.keyword == "HEALTHCHECK" else self.arguments
        text = text.strip()
        return list(json.loads(text)) if text.startswith("[") else None


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def named(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions in order; comments (parser directives too) dropped, ``\\`` continuations joined."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def dockerfile_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in dockerfile_instructions(text):
        if instruction.keyword == "FROM":
            words = [word for word in instruction.arguments.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, ()))
        elif stages:
            last = stages[-1]
            stages[-1] = Stage(last.base, last.name, (*last.instructions, instruction))
    return stages


def taken_from_other_stages(stage: Stage) -> list[tuple[str, str]]:
    """(stage, path) of every ``COPY --from=`` source and ``RUN --mount=...,from=`` of ``stage``."""
    taken = []
    for instruction in stage.instructions:
        words = instruction.arguments.split()
        if instruction.keyword == "COPY" and words[0].startswith("--from="):
            origin = words[0].removeprefix("--from=")
            taken += [(origin, word) for word in words[:-1] if not word.startswith("--")]
        for mount in re.findall(r"--mount=(\S+)", instruction.arguments):
            options = dict(part.split("=", 1) for part in mount.split(",") if "=" in part)
            if "from" in options:
                taken.append((options["from"], options.get("source", "/")))
    return taken


# --- .dockerignore and .gitignore ---------------------------------------------------------------------


def _glob_regex(pattern: str) -> str:
    """A glob as Docker and git read it: ``*`` and ``?`` stay within one path segment, ``**`` spans many."""
    regex, index = "", 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            regex, index = regex + "(?:.*/)?", index + 3
        elif pattern.startswith("**", index):
            regex, index = regex + ".*", index + 2
        elif pattern[index] == "*":
            regex, index = regex + "[^/]*", index + 1
        elif pattern[index] == "?":
            regex, index = regex + "[^/]", index + 1
        elif pattern[index] == "[" and "]" in pattern[index:]:
            end = pattern.index("]", index)
            regex, index = regex + pattern[index : end + 1], end + 1
        else:
            regex, index = regex + re.escape(pattern[index]), index + 1
    return regex


def ignore_patterns(text: str) -> list[str]:
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _parents_and_self(path: str) -> Iterable[str]:
    parts = path.split("/")
    return ("/".join(parts[: end + 1]) for end in range(len(parts)))


def dockerignored(patterns: Sequence[str], path: str) -> bool:
    """Whether ``path`` (relative to the context) is left out: the last pattern that matches it or one of
    its parent directories decides, ``!`` letting it back in (moby's patternmatcher)."""
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = re.compile(_glob_regex(pattern.lstrip("!").strip("/")))
        if any(regex.fullmatch(candidate) for candidate in _parents_and_self(path)):
            excluded = not negated
    return excluded


def _gitignore_decides(patterns: Sequence[str], path: str, *, is_dir: bool) -> bool:
    ignored = False
    for pattern in patterns:
        negated, body = pattern.startswith("!"), pattern.lstrip("!")
        if body.endswith("/") and not is_dir:
            continue
        body = body.rstrip("/")
        # A pattern with a slash is anchored at the repository root; one without matches at any depth.
        regex = _glob_regex(body.lstrip("/")) if "/" in body else "(?:.*/)?" + _glob_regex(body)
        if re.fullmatch(regex, path):
            ignored = not negated
    return ignored


def gitignored(patterns: Sequence[str], path: str) -> bool:
    """Whether git ignores the file ``path``. A file in an ignored directory stays ignored whatever a later
    ``!`` says (git does not look inside it)."""
    *parents, _ = list(_parents_and_self(path))
    if any(_gitignore_decides(patterns, parent, is_dir=True) for parent in parents):
        return True
    return _gitignore_decides(patterns, path, is_dir=False)

"""Imports point inward (DESIGN §1, STYLE §1): checked by walking every module's imports with ``ast``."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "payments"

#: For each layer, the payments packages it may import (besides itself).
ALLOWED_INTERNAL = {
    "domain": {"domain"},
    "tables": {"tables"},
    "bridges": {"bridges", "domain", "tables", "pipeline.topology"},
    "agents": {"agents", "domain", "pipeline", "tables"},
    "web": {"web", "domain", "pipeline"},
}
#: Third-party packages the pure layers may use; everything else there must be the standard library.
ALLOWED_THIRD_PARTY = {"domain": {"pydantic"}, "tables": set()}
#: Modules of the pipeline that agents and web may not reach into: they hold the wiring.
COMPOSITION_ROOT = {"pipeline.bootstrap", "pipeline.cli", "pipeline.demo"}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(relative.parts), path


def imports_of(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def layer_of(module: str) -> str:
    return module.split(".", 1)[0]


def is_standard_or_allowed(top: str, allowed: set[str]) -> bool:
    return top in sys.stdlib_module_names or top == "__future__" or top in allowed


def within(target: str, allowed: set[str]) -> bool:
    return any(target == prefix or target.startswith(prefix + ".") for prefix in allowed)


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=str)
def test_every_import_points_inward(module, path):
    layer = layer_of(module)
    violations = []
    for imported in imports_of(path):
        top = imported.split(".", 1)[0]
        if top == "payments":
            target = imported.removeprefix("payments.")
            if layer in ALLOWED_INTERNAL and not within(target, ALLOWED_INTERNAL[layer]):
                violations.append(imported)
            if layer in {"agents", "web"} and within(target, COMPOSITION_ROOT):
                violations.append(imported)
        elif layer in ALLOWED_THIRD_PARTY and not is_standard_or_allowed(top, ALLOWED_THIRD_PARTY[layer]):
            violations.append(imported)

    assert violations == [], f"{module} imports what its layer must not: {violations}"


def test_the_walk_sees_the_layers():
    layers = {layer_of(module) for module, _ in modules()}

    assert {"domain", "pipeline", "bridges", "web"} <= layers

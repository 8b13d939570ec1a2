"""The layers, as the imports draw them (docs/architecture.md, "Layers"). Every import of every
Python file in the repository is read from its syntax tree, inside functions and under
TYPE_CHECKING too, and each arrow must run the right way:

  chalicelib                 imports only itself (and third-party packages): it is the Lambda package
  app.py                     imports chalicelib
  ops                        imports chalicelib and itself: what the operator commands share
  dashboards, dr, pipeline   import chalicelib, ops and themselves, not each other
  local                      dev tooling: imports anything but tests, and is imported only by tests
  tests                      import anything
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ops.templates import ROOT

PROJECT = ("app", "chalicelib", "ops", "dashboards", "dr", "pipeline", "local", "tests")
ALLOWED: dict[str, set[str]] = {
    "app": {"chalicelib"},
    "chalicelib": {"chalicelib"},
    "ops": {"chalicelib", "ops"},
    "dashboards": {"chalicelib", "ops", "dashboards"},
    "dr": {"chalicelib", "ops", "dr"},
    "pipeline": {"chalicelib", "ops", "pipeline"},
    "local": {"app", "chalicelib", "ops", "dashboards", "dr", "pipeline", "local"},
    "tests": set(PROJECT),
}
SKIPPED = {"vendor", ".chalice", ".git", "build", ".local-stack"}  # and every virtual environment, .venv*


def python_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if not SKIPPED & set(p.relative_to(ROOT).parts)
                  and not p.relative_to(ROOT).parts[0].startswith(".venv"))


def layer_of(path: Path) -> str:
    first = path.relative_to(ROOT).parts[0]
    return "app" if first == "app.py" else first


def imported_layers(source: str) -> set[tuple[str, int]]:
    """(the project layer each import names, its line) for every import in a module."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside their package
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in PROJECT}
    return found


def test_every_python_file_is_in_a_known_layer() -> None:
    assert {layer_of(p) for p in python_files()} <= set(ALLOWED)


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_the_right_way(path: Path) -> None:
    layer = layer_of(path)
    wrong = sorted((line, target) for target, line in imported_layers(path.read_text())
                   if target not in ALLOWED[layer])
    assert not wrong, f"{path.relative_to(ROOT)} ({layer}) must not import " + ", ".join(
        f"{target} (line {line})" for line, target in wrong)


def test_the_checker_sees_a_wrong_arrow() -> None:
    """The rule can fail: an import of local from chalicelib, in any form, is found."""
    source = "import os\nfrom local.emulator import ROOT\ndef f():\n    import dr.cli\n"
    assert imported_layers(source) == {("local", 2), ("dr", 4)}
    assert not {"local", "dr"} & ALLOWED["chalicelib"]

"""The README's two commands are the ones the project really runs."""
from __future__ import annotations

import re

from local.emulator import ROOT

README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    block = re.search(r"## Two commands\n.*?```sh\n(.*?)```", README, re.S)
    assert block, "README has no 'Two commands' block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_names_exactly_two_commands() -> None:
    assert readme_commands() == ["make up", "make test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert ci == [readme_commands()[1]]


def test_the_makefile_targets_exist_and_bootstrap_the_venv() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up: \$\(STAMP\)$", makefile, re.M)
    assert re.search(r"^test: \$\(STAMP\) \$\(CHECKOV_STAMP\)$", makefile, re.M)
    assert "-r requirements-dev.txt" in makefile

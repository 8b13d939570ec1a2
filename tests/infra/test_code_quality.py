"""Lint and type checks run with the suite, so that a red check fails CI like a red test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.templates import ROOT

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_every_package() -> None:
    """mypy.ini names the packages (app.py, chalicelib, ops, dr, dashboards, pipeline, local) and
    asks for every function to be typed."""
    result = subprocess.run([str(BIN / "mypy")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in" in result.stdout

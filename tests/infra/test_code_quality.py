"""Lint and type checks run with the suite, so that a red check fails CI like a red test."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.emulator import ROOT

BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_lambda_code_and_the_local_stack() -> None:
    result = subprocess.run([str(BIN / "mypy"), "--ignore-missing-imports", "app.py", "chalicelib", "local"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr

"""pipeline/bytecode.py on small zips: what it writes, whatever the environment says about bytecode."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ops.templates import ROOT
from pipeline.bytecode import compile_zip
from tests.bytecode_check import bytecode_problems

MODULES = {"app.py": "import pkg.sub.m\n", "pkg/__init__.py": "", "pkg/sub/m.py": "VALUE = 1\n"}


def make_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as package:
        for name, text in MODULES.items():
            package.writestr(name, text)
    return path


def run_bytecode(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.bytecode", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=60)


def test_every_module_gets_a_hash_checked_pyc(tmp_path: Path) -> None:
    package = make_zip(tmp_path / "deployment.zip")
    assert compile_zip(package) == (3, 0)
    assert bytecode_problems(package, MODULES) == ([], [])


def test_a_pycache_prefix_in_the_environment_does_not_send_the_pyc_files_elsewhere(tmp_path: Path) -> None:
    package = make_zip(tmp_path / "deployment.zip")
    result = run_bytecode("--zip", str(package), PYTHONPYCACHEPREFIX=str(tmp_path / "prefix"))
    assert result.returncode == 0, result.stderr
    assert bytecode_problems(package, MODULES) == ([], [])


def test_every_cached_copy_of_the_package_is_compiled(tmp_path: Path) -> None:
    """chalice's cache key hashes requirements.txt's text: two keys can hold the same bytes, and the
    one chalice deploy reuses must be compiled whichever it is."""
    cache = tmp_path / "deployments"
    cache.mkdir()
    copies = [make_zip(cache / name) for name in ("0000-python3.11.zip", "ffff-python3.11.zip")]
    other = make_zip(cache / "1234-python3.11.zip")
    with zipfile.ZipFile(other, "a") as package:
        package.writestr("extra.py", "")
    packaged = make_zip(tmp_path / "out.zip")
    result = run_bytecode("--chalice-cache", str(packaged), "--cache-dir", str(cache))
    assert result.returncode == 0, result.stderr
    for copy in copies:
        assert bytecode_problems(copy, MODULES) == ([], [])
    assert bytecode_problems(other)[0] == ["app.py", "extra.py", "pkg/__init__.py", "pkg/sub/m.py"]


def test_no_cached_copy_is_an_error(tmp_path: Path) -> None:
    cache = tmp_path / "deployments"
    cache.mkdir()
    result = run_bytecode("--chalice-cache", str(make_zip(tmp_path / "out.zip")), "--cache-dir", str(cache))
    assert result.returncode == 1
    assert "no package in" in result.stderr

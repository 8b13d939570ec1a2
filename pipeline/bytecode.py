"""Bytecode for the Lambda package: every module compiled ahead, so that a cold start compiles nothing.

Lambda's /var/task is read-only, so Python compiles every module it imports from a bare .py on each
cold start and throws the result away, and chalice ships the dependencies it installs as bare .py
files (aws/chalice#868). For this app that is pydantic, urllib3, requests and the rest: without the
.pyc files a cold start takes 1.7 to 1.8 times as long (tests/benchmarks/bench_cold_start.py).

The .pyc files written here are hash-checked (PEP 552): Python uses one only while it matches its
source's hash, whatever modification times the zip gives the files, so a stale one is never run. They
are named for the interpreter that compiles them (cpython-311) and compiled without optimisation
whatever PYTHONOPTIMIZE says; chalice picks the Lambda runtime from that same interpreter (Python 3.10
to 3.14), so they match it. Made by another Python they would go unused, not wrong. A module that
does not compile on this interpreter (some packages carry files for other versions) is left as it is.

`chalice deploy` reuses the package it finds in its cache (.chalice/deployments/<hash>-<runtime>.zip,
keyed by a hash of requirements.txt, app.py, chalicelib/ (its __pycache__ too) and vendor/), which
`chalice package` fills the same way. So `make deploy` packages, compiles the cached zip in place and
runs `chalice deploy` straight after, with chalicelib/__pycache__ cleared and no bytecode written, so
that nothing changes the hash in between; it fails if chalice did not say "Reusing existing deployment
package.".

  python -m pipeline.bytecode --zip FILE             add the .pyc files to a deployment zip, in place
  python -m pipeline.bytecode --chalice-cache FILE   the same to the cached package(s) FILE is a copy of
"""
from __future__ import annotations

import argparse
import os
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

# Rewritten entries keep one fixed date: the zip's bytes then depend on its contents only.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def compile_tree(root: Path) -> int:
    """Write a hash-checked .pyc for every .py under `root`; the number of .py files it could not compile."""
    failed = 0
    for source in sorted(root.rglob("*.py")):
        if "__pycache__" in source.parts:
            continue
        # cfile named here: py_compile's default follows PYTHONPYCACHEPREFIX, out of the package
        cached = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        try:
            py_compile.compile(str(source), cfile=str(cached), dfile=source.relative_to(root).as_posix(),
                               doraise=True, optimize=0,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
        except (py_compile.PyCompileError, SyntaxError, ValueError):
            failed += 1
    return failed


def compile_zip(path: Path) -> tuple[int, int]:
    """Rewrite the zip at `path` with a .pyc beside every .py it holds. (.py files, failures)"""
    with tempfile.TemporaryDirectory(prefix="bytecode-") as scratch:
        root = Path(scratch) / "task"
        with zipfile.ZipFile(path) as source:
            modes = {info.filename: info.external_attr for info in source.infolist()}
            source.extractall(root)
        for cache in list(root.rglob("__pycache__")):  # whatever was compiled elsewhere, redone here
            shutil.rmtree(cache)
        sources = sum(1 for _ in root.rglob("*.py"))
        failed = compile_tree(root)
        rewritten = path.with_suffix(".tmp")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                name = file.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                target.writestr(info, file.read_bytes())
        os.replace(rewritten, path)
    return sources, failed


def cached_packages(packaged: Path, cache: Path) -> list[Path]:
    """The zips in chalice's cache that `packaged` (a chalice package output) is a copy of. Its key
    hashes requirements.txt's text, so two keys can hold the same bytes: all of them are returned."""
    data = packaged.read_bytes()
    found = [candidate for candidate in sorted(cache.glob("*.zip"))
             if candidate.stat().st_size == len(data) and candidate.read_bytes() == data]
    if not found:
        raise FileNotFoundError(f"no package in {cache} is a copy of {packaged}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--zip", type=Path, help="a deployment zip to rewrite with the .pyc files added")
    target.add_argument("--chalice-cache", type=Path, metavar="FILE",
                        help="a chalice package output: compile every cached package it is a copy of")
    parser.add_argument("--cache-dir", type=Path, default=Path(".chalice/deployments"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    paths = [args.zip]
    if args.chalice_cache:
        try:
            paths = cached_packages(args.chalice_cache, args.cache_dir)
        except FileNotFoundError as error:
            print(f"pipeline.bytecode: {error}", file=sys.stderr)
            return 1
    for path in paths:
        sources, failed = compile_zip(path)
        left = f"; {failed} left as source (they do not compile on this Python)" if failed else ""
        print(f"{path}: {sources - failed} of {sources} modules compiled ({sys.implementation.cache_tag}, "
              f"hash-checked){left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Size of the Lambda deployment package, and proof that boto3/botocore are not bundled.

What it measures
  Runs what `make package STAGE=prod` runs (`make vendor`, then `chalice package --stage prod
  --merge-template .chalice/package-merge.json <tmpdir>` with the chalice of this virtualenv, from
  the project root, as the infra tests and the pipeline do, then pipeline/bytecode.py's compile_zip,
  which adds a hash-checked .pyc for every module) and reads the deployment.zip it writes:
  its size, the number of files, the top-level packages in it with their compressed and uncompressed
  sizes, and whether boto3 or botocore are in it (they must not be: the Lambda runtime provides
  them, and requirements.txt holds only the run-time needs). chalice keeps its built package in
  .chalice/deployments/ (git-ignored) keyed by a hash of requirements.txt and the app's code; on a
  miss it downloads Linux wheels from PyPI, on a hit it reuses the cached zip. The output says which
  happened. --fresh packages a copy of the project in a temporary directory instead, which always
  builds from scratch and leaves the project's cache alone.

  The baseline is the same package with boto3 bundled: the zip is copied and the installed files of
  boto3 + botocore from .venv's site-packages (as their dist-info RECORD lists them, without
  __pycache__) are added with zipfile's deflate; a second line adds boto3's whole dependency closure
  (s3transfer, jmespath, python-dateutil, urllib3, six) too.

How to read the output
  * "deployment.zip": size in KiB, files, and the uncompressed size, against Lambda's limits (50 MiB
    zipped for a direct upload, 250 MiB unzipped), and its size without any .pyc (the same zip with
    every __pycache__ entry left out, as chalice writes its dependencies).
  * The packages table: one row per top-level entry of the zip, largest first.
  * "boto3 in package: no" / "botocore in package: no" are the checks; the script exits with status 1
    if either is "yes".
  * The comparison table: size of ours vs the zip with boto3 bundled, and the ratio naive / ours.
  * The .pyc line (information): how many .py and .pyc files the zip holds, and the time to compile
    all its .py files here: what a cold start could spend compiling without them (an upper bound;
    bench_cold_start.py measures the cold start itself with and without them).

Run from the project root:  .venv/bin/python -m tests.benchmarks.bench_package [--stage prod] [--fresh]
It takes from a few seconds (cached) to a minute or so (wheels downloaded).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

from tabulate import tabulate

from ops.templates import ROOT
from pipeline.bytecode import compile_zip

CHALICE = Path(sys.executable).parent / "chalice"
KIB = 1024
MIB = 1024 * 1024
LAMBDA_ZIP_LIMIT = 50 * MIB  # direct upload
LAMBDA_UNZIPPED_LIMIT = 250 * MIB
BOTO3 = ("boto3", "botocore")
BOTO3_CLOSURE = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")
# What `chalice package` needs to package the app (the project without its tests and tools).
PROJECT_FILES = ("app.py", "requirements.txt", "chalicelib", "vendor", ".chalice/config.json",
                 ".chalice/package-merge.json", ".chalice/policy-dev.json", ".chalice/policy-dev-dr.json",
                 ".chalice/policy-prod.json", ".chalice/policy-prod-dr.json")


def top_level(name: str) -> str:
    return name.split("/", 1)[0] + ("/" if "/" in name else "")


def installed_files(distribution: str) -> list[tuple[Path, str]]:
    """(absolute path, path in site-packages) of a distribution's installed files, without bytecode
    and without files outside site-packages (console scripts)."""
    dist = importlib.metadata.distribution(distribution)
    files = []
    for entry in dist.files or []:
        relative = str(entry)
        if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
            continue
        path = Path(str(dist.locate_file(entry)))
        if path.is_file():
            files.append((path, relative))
    return files


def with_bundled(package: Path, distributions: tuple[str, ...], target: Path) -> tuple[int, int]:
    """Copy `package` to `target` and add the distributions' files (deflate). (zip bytes, files added)."""
    shutil.copyfile(package, target)
    added = 0
    with zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        present = set(archive.namelist())
        for distribution in distributions:
            for path, arcname in installed_files(distribution):
                if arcname not in present:
                    archive.write(path, arcname)
                    present.add(arcname)
                    added += 1
    return target.stat().st_size, added


def copy_project(destination: Path) -> Path:
    for name in PROJECT_FILES:
        source = ROOT / name
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copyfile(source, target)
    return destination


def compile_seconds(archive: zipfile.ZipFile) -> tuple[int, float]:
    """(number of .py files, seconds to compile them all)."""
    sources = [(name, archive.read(name)) for name in archive.namelist() if name.endswith(".py")]
    t0 = time.perf_counter()
    for name, source in sources:
        compile(source, name, "exec", dont_inherit=True)
    return len(sources), time.perf_counter() - t0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod", help="the chalice stage to package (default prod)")
    parser.add_argument("--fresh", action="store_true",
                        help="package a temporary copy of the project: no cached package, wheels downloaded")
    parser.add_argument("--top", type=int, default=0, help="show only the N largest top-level entries (0 = all)")
    return parser.parse_args(argv)


def without_bytecode(package: Path, target: Path) -> int:
    """The size of `package` rewritten without its __pycache__ entries."""
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in source.infolist():
            if "__pycache__/" not in info.filename:
                copy.writestr(info, source.read(info))
    return target.stat().st_size


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    vendored = subprocess.run(["make", "vendor"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    if vendored.returncode != 0:
        print(vendored.stdout + vendored.stderr, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-package-") as tmp:
        tmpdir = Path(tmp)
        project = copy_project(tmpdir / "project") if args.fresh else ROOT
        out = tmpdir / "out"
        env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
        cache_dir = project / ".chalice" / "deployments"
        cached_before = set(cache_dir.glob("*.zip")) if cache_dir.is_dir() else set()
        t0 = time.perf_counter()
        result = subprocess.run([str(CHALICE), "package", "--stage", args.stage, "--merge-template",
                                 ".chalice/package-merge.json", str(out)], cwd=project, env=env,
                                capture_output=True, text=True, timeout=900)
        package_seconds = time.perf_counter() - t0
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            print(f"chalice package failed with exit status {result.returncode}", file=sys.stderr)
            return 2
        reused = "Reusing existing deployment package" in result.stdout + result.stderr
        cached_now = sorted(set(cache_dir.glob("*.zip")) - cached_before) if cache_dir.is_dir() else []
        package = out / "deployment.zip"
        t0 = time.perf_counter()
        compile_zip(package)
        bytecode_seconds = time.perf_counter() - t0
        zip_bytes = package.stat().st_size
        source_only_bytes = without_bytecode(package, tmpdir / "source-only.zip")

        with zipfile.ZipFile(package) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            names = [i.filename for i in infos]
            py_files, compile_s = compile_seconds(archive)
        unzipped = sum(i.file_size for i in infos)
        groups: dict[str, list[zipfile.ZipInfo]] = defaultdict(list)
        for info in infos:
            groups[top_level(info.filename)].append(info)
        rows: list[tuple[str, int, float, float]] = sorted(
            ((name, len(members), sum(m.compress_size for m in members) / KIB,
              sum(m.file_size for m in members) / KIB) for name, members in groups.items()),
            key=lambda row: -row[2])
        shown = rows[:args.top] if args.top > 0 else rows
        bundled = {name: any(n.startswith(name + "/") or n.startswith(name + "-") for n in names) for name in BOTO3}

        naive_boto3, added_boto3 = with_bundled(package, BOTO3, tmpdir / "with-boto3.zip")
        naive_closure, added_closure = with_bundled(package, BOTO3_CLOSURE, tmpdir / "with-boto3-closure.zip")

    source = ("reused the cached package in .chalice/deployments/" if reused
              else "built from scratch (Linux wheels fetched by pip from PyPI, or from pip's cache)")
    if cached_now and not args.fresh:
        source += "; chalice cached it as " + ", ".join(str(p.relative_to(ROOT)) for p in cached_now) + " (git-ignored)"
    where = "a temporary copy of the project" if args.fresh else str(ROOT)
    print(f"chalice package --stage {args.stage}: {package_seconds:.1f} s, run in {where}; {source}\n")
    print(f"deployment.zip: {zip_bytes / KIB:,.1f} KiB, {len(infos)} files, {unzipped / KIB:,.1f} KiB unzipped "
          f"(Lambda limits: {LAMBDA_ZIP_LIMIT // MIB} MiB zipped, {LAMBDA_UNZIPPED_LIMIT // MIB} MiB unzipped); "
          f"without any .pyc it would be {source_only_bytes / KIB:,.1f} KiB: the .pyc files add "
          f"{(zip_bytes - source_only_bytes) / KIB:,.1f} KiB ({bytecode_seconds:.1f} s to make)\n")
    print(tabulate([[name, files, f"{zipped:,.1f}", f"{raw:,.1f}"] for name, files, zipped, raw in shown],
                   headers=["top-level entry", "files", "KiB zipped", "KiB unzipped"],
                   colalign=("left", "right", "right", "right")))
    if len(shown) < len(rows):
        print(f"... and {len(rows) - len(shown)} smaller entries")
    print()
    for name in BOTO3:
        print(f"{name} in package: {'YES' if bundled[name] else 'no'}")
    print()
    print(tabulate([
        ["ours (deployment.zip)", "-", f"{zip_bytes / KIB:,.1f}", "1.00x"],
        ["naive: + boto3 + botocore", added_boto3, f"{naive_boto3 / KIB:,.1f}", f"{naive_boto3 / zip_bytes:.2f}x"],
        ["naive: + boto3 and all its dependencies", added_closure, f"{naive_closure / KIB:,.1f}",
         f"{naive_closure / zip_bytes:.2f}x"],
    ], headers=["package", "files added", "KiB zipped", "naive / ours"], colalign=("left", "right", "right", "right")))
    pyc = sum(1 for n in names if n.endswith(".pyc"))
    print(f"\nFor information: the zip holds {py_files} .py and {pyc} .pyc files; compiling all the .py files "
          f"takes {compile_s * 1000:,.0f} ms here (what a cold start could spend compiling without the .pyc).")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    return 1 if any(bundled.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

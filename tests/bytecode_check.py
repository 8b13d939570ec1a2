"""What the tests check of a deployment zip's bytecode (pipeline/bytecode.py writes it)."""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from collections.abc import Collection
from pathlib import Path


def bytecode_problems(package_zip: Path, required: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """The .py files of a deployment zip without a .pyc beside them, and those whose .pyc is not
    hash-checked against their very source (PEP 552). The zip must hold every module in `required`."""
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(package_zip) as package:
        names = set(package.namelist())
        sources = sorted(name for name in names if name.endswith(".py"))
        assert set(required) <= set(sources), f"not in the zip: {sorted(set(required) - set(sources))}"
        missing, stale = [], []
        for source in sources:
            folder, _, file = source.rpartition("/")
            cached = f"{folder}/__pycache__/{file[:-3]}.{tag}.pyc".lstrip("/")
            if cached not in names:
                missing.append(source)
                continue
            header = package.read(cached)[:16]
            flags = int.from_bytes(header[4:8], "little")
            if (header[:4] != importlib.util.MAGIC_NUMBER or flags != 0b11
                    or header[8:16] != importlib.util.source_hash(package.read(source))):
                stale.append(source)
    return missing, stale

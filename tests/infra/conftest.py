"""What the template tests share: the app packaged as `make package` and the pipeline's build package it."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ops.templates import ROOT


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for stage in ("prod", "prod-dr"):
        target = tmp_path_factory.mktemp(stage)
        region = "us-east-1" if stage == "prod" else "us-west-2"
        # as the buildspec does: the stream ARN from the regional stack, so the stream handler is packaged
        env = {**os.environ, "AWS_DEFAULT_REGION": region,
               "TABLE_STREAM_ARN": f"arn:aws:dynamodb:{region}:123456789012:table/devops-metrics-prod/stream/x"}
        result = subprocess.run(["make", "package", f"STAGE={stage}", f"OUT={target}"],
                                capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        out[stage] = target
    return out

"""What the template tests share: the app packaged as `make package` and the pipeline's build package it,
and that package as CloudFormation's Serverless transform turns it into the stack it deploys."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

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


SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"  # make test installs it (requirements-sam.txt)
APP_STACKS = {"prod": ("us-east-1", "devops-metrics-prod-app"), "prod-dr": ("us-west-2", "devops-metrics-prod-dr-app")}


@pytest.fixture(scope="session")
def transformed(packaged: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Each packaged template after the Serverless transform (tests/infra/sam_transform.py), in the
    region and stack the pipeline deploys it to."""
    out = {}
    for stage, (region, stack) in APP_STACKS.items():
        result = subprocess.run([str(SAM_PYTHON), str(ROOT / "tests" / "infra" / "sam_transform.py"),
                                 str(packaged[stage] / "sam.json"), region, stack],
                                capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        out[stage] = json.loads(result.stdout)
    return out

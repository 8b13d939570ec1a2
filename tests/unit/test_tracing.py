"""X-Ray is patched in only where a deployed stage turns it on, and a package without aws-xray-sdk
runs untraced instead of failing every request."""
from __future__ import annotations

import sys

import pytest

from chalicelib import tracing

ON = {"XRAY_TRACING": "true", "AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"}


def test_tracing_is_on_only_when_the_stage_says_so_and_the_local_switch_allows() -> None:
    assert tracing.tracing_enabled(ON)
    assert not tracing.tracing_enabled({"AWS_XRAY_DAEMON_ADDRESS": "169.254.79.129:2000"})  # Lambda sets it anyway
    assert not tracing.tracing_enabled({**ON, "AWS_XRAY_SDK_ENABLED": "false"})


def test_a_package_without_aws_xray_sdk_runs_untraced(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # what `import aws_xray_sdk` finds without vendor/
    monkeypatch.setitem(sys.modules, "aws_xray_sdk.core", None)
    monkeypatch.setattr(tracing, "_PATCHED", set())
    assert tracing.enable_tracing(("botocore",), ON) is False
    assert '"level":"WARNING","message":"tracing unavailable"' in capsys.readouterr().out


def test_off_means_aws_xray_sdk_is_not_even_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "aws_xray_sdk.core", raising=False)
    monkeypatch.delitem(sys.modules, "aws_xray_sdk", raising=False)
    assert tracing.enable_tracing(("botocore", "requests"), {"XRAY_TRACING": "false"}) is False
    assert "aws_xray_sdk" not in sys.modules

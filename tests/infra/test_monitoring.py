"""The monitoring template and its settings: cfn-lint, checkov, alarm wiring, and thresholds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import constants as C
from chalicelib import names
from dashboards.deploy import FIXED_PARAMETERS, validate_stages
from dashboards.references import alarm_parameters, load_stages
from dashboards.template import resolved_alarms
from ops.templates import ROOT, load_template

BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TEMPLATE = "dashboards/alarms.yaml"
ALARMS = load_template(ROOT / TEMPLATE)
STAGES = load_stages()


def alarms() -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in ALARMS["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def test_cfn_lint_is_clean_with_info_rules() -> None:
    result = subprocess.run([str(BIN / "cfn-lint"), "-c", "I", "--", TEMPLATE], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_is_clean_and_every_skip_is_justified() -> None:
    result = subprocess.run([str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--quiet",
                             "--skip-download", "-f", TEMPLATE], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "LOG_LEVEL": "ERROR"})
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    # checkov has no checks for alarms, so a clean run may report only a summary without results
    failed = [c["check_id"] for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    assert failed == [] and all(r.get("failed", 0) == 0 and r.get("parsing_errors", 0) == 0 for r in reports)
    for name, resource in ALARMS["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) >= 40, f"{name}: {skip['id']} needs its reason"


def intrinsics(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" or key.startswith("Fn::"):
                yield key
            yield from intrinsics(value)
    elif isinstance(node, list):
        for value in node:
            yield from intrinsics(value)


def test_the_template_uses_only_ref_and_sub_so_the_local_stack_can_resolve_it() -> None:
    assert set(intrinsics(ALARMS)) == {"Fn::Ref", "Fn::Sub"}
    assert "Mappings" not in ALARMS and "Conditions" not in ALARMS


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery() -> None:
    found = alarms()
    assert len(found) >= 5
    for name, props in found.items():
        assert props["AlarmActions"] == props["OKActions"] == [{"Fn::Ref": "AlertTopicArn"}], name
        assert props["ActionsEnabled"] is True and props["TreatMissingData"] in ("breaching", "notBreaching"), name


def test_every_alarm_and_stack_is_named_as_chalicelib_names_names_it() -> None:
    """The template names its alarms itself; they must be the names the code would give them."""
    resolved = resolved_alarms(alarm_parameters("prod", "prod-dr", "arn:aws:sns:us-west-2:1:t", STAGES), "us-west-2")
    for logical_id, props in resolved.items():
        what = props["AlarmName"].removeprefix(names.alarm("prod-dr", ""))
        assert what and props["AlarmName"] == names.alarm("prod-dr", what), logical_id
    assert names.stack("prod", "monitoring") == "devops-metrics-prod-monitoring"
    assert names.alarm("prod-dr", "api-5xx") in {p["AlarmName"] for p in resolved.values()}


def test_a_silent_health_check_is_a_failed_one() -> None:
    health = alarms()["HealthCheckAlarm"]
    assert (health["MetricName"], health["Statistic"], health["TreatMissingData"]) == (
        "HealthCheckFailed", "Maximum", "breaching")
    # the check runs every 5 minutes: a period shorter than that would count the gaps between runs
    assert health["Period"] * health["EvaluationPeriods"] > C.HEALTH_CHECK_INTERVAL_MINUTES * 60


def test_stages_json_sets_every_threshold_parameter_and_valid_addresses() -> None:
    assert set(STAGES) == {"dev", "prod"}
    assert validate_stages(STAGES) == []
    thresholds = set(ALARMS["Parameters"]) - set(FIXED_PARAMETERS)
    referenced = {json.dumps(p["Threshold"]) for p in alarms().values()}
    assert all(json.dumps({"Fn::Ref": t}) in referenced for t in thresholds)  # each one is used


def test_dev_is_looser_than_prod_for_every_threshold() -> None:
    dev, prod = STAGES["dev"]["thresholds"], STAGES["prod"]["thresholds"]
    assert set(dev) == set(prod)
    for name in prod:
        assert dev[name] > prod[name], name  # every alarm fires above its threshold: higher is looser


def test_the_prod_lag_threshold_is_the_rpo_target() -> None:
    assert STAGES["prod"]["thresholds"]["ReplicationLagThresholdSeconds"] == C.RPO_TARGET_SECONDS


def test_prod_thresholds_are_the_design_s() -> None:
    assert STAGES["prod"]["thresholds"] == {"LambdaErrorsThreshold": 5, "Api5xxThreshold": 10,
                                            "ReplicationLagThresholdSeconds": C.RPO_TARGET_SECONDS}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_no_address_is_a_placeholder(stage: str) -> None:
    assert all(not e.endswith(("example.com", "example.org")) for e in STAGES[stage]["alert_emails"])

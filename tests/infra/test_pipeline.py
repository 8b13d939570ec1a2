"""The delivery pipeline as code: lint, security checks, least privilege, the buildspec, and the
deploy command run against the AWS emulator."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.templates import ROOT, load_template
from tests.infra.policies import actions, policy_statements
from tests.infra.test_docs import readme_commands

BIN = Path(sys.executable).parent
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TEMPLATES = ("dr/regional.yaml", "pipeline/pipeline.yaml", "pipeline/artifacts.yaml")


@pytest.mark.parametrize("template", TEMPLATES)
def test_cfn_lint_is_clean_with_info_rules(template: str) -> None:
    result = subprocess.run([str(BIN / "cfn-lint"), "-c", "I", "--", template], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_is_clean_and_every_skip_is_justified() -> None:
    args = [str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--quiet", "--skip-download"]
    for template in TEMPLATES:
        args += ["-f", template]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "LOG_LEVEL": "ERROR"})
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["resource"], c["file_path"]) for r in reports for c in r["results"]["failed_checks"]]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in reports) > 40
    for template in TEMPLATES:
        for name, resource in load_template(ROOT / template)["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 40, f"{template} {name}: {skip['id']} needs its reason"


@pytest.mark.parametrize("template", TEMPLATES)
def test_no_policy_allows_a_wildcard_action(template: str) -> None:
    statements = policy_statements(load_template(ROOT / template)["Resources"])
    for statement in statements:
        assert "NotAction" not in statement
        if statement["Effect"] == "Allow":
            assert all("*" not in a for a in actions(statement)), statement
    if template == "pipeline/pipeline.yaml":
        assert len(statements) > 15


def test_the_only_wildcard_is_the_tls_deny_on_the_artifact_bucket() -> None:
    denies = [s for s in policy_statements(load_template(ROOT / "pipeline/artifacts.yaml")["Resources"])
              if s["Effect"] == "Deny"]
    assert denies == [{**denies[0], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]


def test_the_artifact_bucket_is_encrypted_versioned_private_and_expires_old_artifacts() -> None:
    bucket = load_template(ROOT / "pipeline/artifacts.yaml")["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
        "SSEAlgorithm"] == "aws:kms"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["LifecycleConfiguration"]["Rules"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0


def pipeline_template() -> dict[str, Any]:
    return load_template(ROOT / "pipeline/pipeline.yaml")


def test_the_pipeline_runs_source_build_approval_then_each_region_deployed_and_smoke_tested() -> None:
    pipeline = pipeline_template()["Resources"]["Pipeline"]["Properties"]
    assert pipeline["PipelineType"] == "V2"
    stages = pipeline["Stages"]
    names = [s["Name"] if "Name" in s else s["Fn::If"][1]["Name"] for s in stages]
    assert names == ["Source", "BuildAndTest", "Approve", "DeployPrimary", "DeployDR"]
    assert stages[2]["Fn::If"][0] == "IsProd"  # the approval is for prod only
    for stage, region in zip(stages[3:], ("us-east-1", "us-west-2"), strict=True):
        actions = stage["Actions"]
        assert [(a["Name"], a["RunOrder"]) for a in actions] == [
            ("CreateChangeSet", 1), ("ExecuteChangeSet", 2), ("SmokeTest", 3)]
        assert [a["Configuration"]["ActionMode"] for a in actions[:2]] == ["CHANGE_SET_REPLACE", "CHANGE_SET_EXECUTE"]
        assert {a["Region"] for a in actions[:2]} == {region}
        # the smoke test runs after the change set has executed, against the region just deployed
        smoke = actions[2]
        assert (smoke["ActionTypeId"]["Category"], smoke["ActionTypeId"]["Provider"]) == ("Test", "CodeBuild")
        assert smoke["Configuration"]["ProjectName"] == {"Fn::Sub": "devops-metrics-${Stage}-smoke"}
        assert json.loads(smoke["Configuration"]["EnvironmentVariables"]) == [
            {"name": "TARGET_REGION", "value": region, "type": "PLAINTEXT"}]
        # a failed deploy or smoke test rolls the stage back to its last successful release
        assert stage["OnFailure"] == {"Result": "ROLLBACK"}


def test_the_smoke_project_runs_the_smoke_script_the_tests_run() -> None:
    resources = pipeline_template()["Resources"]
    project = resources["SmokeProject"]["Properties"]
    assert project["Source"]["BuildSpec"] == "pipeline/smoke.yml"
    spec = yaml.safe_load((ROOT / "pipeline" / "smoke.yml").read_text())
    assert spec["phases"]["build"]["commands"] == ['make smoke ARGS="--stage $STAGE --region $TARGET_REGION"']
    assert "smoke: $(STAMP)\n\t$(PY) -m pipeline.smoke $(ARGS)\n" in (ROOT / "Makefile").read_text()
    # its role signs calls to the api stage of both regions' APIs and reads the app stacks, nothing else
    statements = {s["Sid"]: s for s in policy_statements(resources["SmokeRole"]["Properties"]["Policies"])}
    assert set(statements) == {"WriteSmokeLogs", "ReadSource", "UseArtifactKey", "ReadAppEndpoints", "CallTheApis"}
    assert statements["CallTheApis"]["Action"] == "execute-api:Invoke"
    assert [r["Fn::Sub"] for r in statements["CallTheApis"]["Resource"]] == [
        f"arn:${{AWS::Partition}}:execute-api:{region}:${{AWS::AccountId}}:*/api/*"
        for region in ("us-east-1", "us-west-2")]


def test_the_source_is_codecommit_by_default_or_a_connection_and_either_trigger_filters_the_branch() -> None:
    template = pipeline_template()
    parameters, resources = template["Parameters"], template["Resources"]
    assert parameters["ConnectionArn"]["Default"] == ""
    assert template["Conditions"]["UseCodeCommit"] == {"Fn::Equals": [{"Fn::Ref": "ConnectionArn"}, ""]}
    assert resources["Repository"]["Condition"] == "UseCodeCommit"
    assert resources["SourceChangedRule"]["Condition"] == "UseCodeCommit"
    assert template["Outputs"]["RepositoryCloneUrl"]["Condition"] == "UseCodeCommit"
    pipeline = resources["Pipeline"]["Properties"]
    condition, codecommit, connection = pipeline["Stages"][0]["Actions"][0]["Fn::If"]
    assert condition == "UseCodeCommit"
    assert codecommit["ActionTypeId"]["Provider"] == "CodeCommit"
    assert codecommit["Configuration"]["BranchName"] == {"Fn::Ref": "BranchName"}
    assert connection["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert connection["Configuration"]["ConnectionArn"] == {"Fn::Ref": "ConnectionArn"}
    assert connection["Configuration"]["FullRepositoryId"] == {"Fn::Ref": "RepositoryId"}
    # CodeCommit: the EventBridge rule names the branch; a connection: the pipeline's V2 trigger does
    assert resources["SourceChangedRule"]["Properties"]["EventPattern"]["detail"]["referenceName"] == [
        {"Fn::Ref": "BranchName"}]
    trigger_condition, (trigger,), _ = pipeline["Triggers"]["Fn::If"]
    assert trigger_condition == "UseConnection"
    assert trigger["GitConfiguration"]["Push"] == [{"Branches": {"Includes": [{"Fn::Ref": "BranchName"}]}}]
    # the pipeline role may read exactly the chosen source
    (choice,) = [s for s in resources["PipelineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                 if "Fn::If" in s]
    _, read_codecommit, read_connection = choice["Fn::If"]
    assert read_codecommit["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:codecommit:${AWS::Region}:${AWS::AccountId}:devops-metrics-${Stage}"}
    assert read_connection["Resource"] == {"Fn::Ref": "ConnectionArn"}
    assert read_connection["Action"] == ["codeconnections:UseConnection", "codestar-connections:UseConnection"]


def test_the_deploy_role_may_shift_traffic_only_for_the_stages_own_stacks() -> None:
    role = pipeline_template()["Resources"]["DeployRole"]["Properties"]
    statements = {s["Sid"]: s for s in policy_statements(role["Policies"])}
    shift = statements["ShiftTrafficThroughCodeDeploy"]
    assert {"codedeploy:CreateDeployment", "codedeploy:CreateDeploymentGroup"} <= set(shift["Action"])
    assert all("devops-metrics-${Stage}-" in r["Fn::Sub"] for r in shift["Resource"])
    assert all(":alarm:devops-metrics-${Stage}-" in r["Fn::Sub"] and "-canary-*" in r["Fn::Sub"]
               for r in statements["ManageRollbackAlarms"]["Resource"])
    assert {"lambda:PublishVersion", "lambda:UpdateAlias"} <= set(statements["PublishApiVersionsAndAlias"]["Action"])


def test_the_buildspec_runs_the_readme_test_command_and_reports_junit() -> None:
    spec = yaml.safe_load((ROOT / "pipeline" / "buildspec.yml").read_text())
    assert set(spec["phases"]) == {"install", "build"}
    commands = spec["phases"]["build"]["commands"]
    assert commands[0] == readme_commands()[1] == (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert spec["phases"]["build"]["on-failure"] == "ABORT"
    assert any('make package STAGE="$STAGE" ' in c for c in commands)
    assert any('make package STAGE="$STAGE-dr" ' in c for c in commands)
    assert spec["env"]["variables"]["PYTEST_ADDOPTS"] == "--junitxml=reports/junit.xml"
    assert spec["reports"]["pytest"]["file-format"] == "JUNITXML"
    assert spec["artifacts"]["files"] == ["packaged-primary.yaml", "packaged-dr.yaml"]
    stage_of_deploy = {a["Configuration"].get("TemplatePath") for s in pipeline_template()[
        "Resources"]["Pipeline"]["Properties"]["Stages"][3:] for a in s["Actions"]}
    assert stage_of_deploy - {None} == {"Packaged::packaged-primary.yaml", "Packaged::packaged-dr.yaml"}


def test_the_deploy_command_creates_then_updates_the_stacks(emulator) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    command = [sys.executable, "-m", "pipeline", "deploy", "--stage", "dev", "--email", "ops@example.com",
               "--endpoint-url", emulator.endpoint]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Pipeline    devops-metrics-dev" in first.stdout and "Confirm the subscription" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert again.returncode == 0 and again.stdout.count("up to date") == 3, again.stdout + again.stderr
    # the emulator holds the stores, encrypted with their own keys (moto's CloudFormation applies a
    # bucket's encryption but skips its versioning, policy and public access block; the template
    # tests above check those)
    for region in ("us-east-1", "us-west-2"):
        cfn = emulator.client("cloudformation", region)
        outputs = {o["OutputKey"]: o["OutputValue"] for o in
                   cfn.describe_stacks(StackName="devops-metrics-dev-pipeline-artifacts")["Stacks"][0]["Outputs"]}
        s3 = emulator.client("s3", region)
        rule = s3.get_bucket_encryption(Bucket=outputs["ArtifactBucketName"])["ServerSideEncryptionConfiguration"][
            "Rules"][0]["ApplyServerSideEncryptionByDefault"]
        assert rule == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": outputs["ArtifactKeyArn"]}
    rules = emulator.client("events", "us-east-1").list_rules()["Rules"]
    failure_rule = [r for r in rules if "failed stage" in r.get("Description", "")]
    assert failure_rule and json.loads(failure_rule[0]["EventPattern"])["detail"]["state"] == ["FAILED"]


def test_the_deploy_command_sets_up_a_github_source_through_a_connection(emulator) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing"}
    connection = "arn:aws:codeconnections:us-east-1:123456789012:connection/0d3f5a9c-1b2e-4c8d-9f00-2a6b7c8d9e10"
    command = [sys.executable, "-m", "pipeline", "deploy", "--stage", "prod", "--connection-arn", connection,
               "--repository", "my-org/devops-metrics", "--endpoint-url", emulator.endpoint]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Source      my-org/devops-metrics through {connection}" in done.stdout
    cfn = emulator.client("cloudformation", "us-east-1")
    created = {r["LogicalResourceId"] for r in cfn.list_stack_resources(
        StackName="devops-metrics-prod-pipeline")["StackResourceSummaries"]}
    assert "Repository" not in created and "SourceChangedRule" not in created, sorted(created)
    half = subprocess.run([*command[:8], "--endpoint-url", emulator.endpoint], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    assert half.returncode == 2 and "--connection-arn and --repository go together" in half.stderr

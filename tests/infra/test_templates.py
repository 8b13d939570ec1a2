"""Templates and policies: cfn-lint, chalice package, least privilege, and the table's safety settings."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import constants as C
from chalicelib import names
from ops.templates import ROOT, load_template
from tests.bytecode_check import bytecode_problems

REQUIRED_MODULES = ("app.py", "chalicelib/ingest.py", "chalicelib/jobs.py", "pydantic/main.py", "chalice/app.py")

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
BIN = Path(sys.executable).parent
STAGES = ("dev", "dev-dr", "prod", "prod-dr")
STAGE_TABLE = {"dev": "devops-metrics-dev", "dev-dr": "devops-metrics-dev",
               "prod": "devops-metrics-prod", "prod-dr": "devops-metrics-prod"}
REGIONS = ("us-east-1", "us-west-2")


def cfn_lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "cfn-lint"), *args], capture_output=True, text=True, cwd=ROOT)


def test_the_regional_template_is_cfn_lint_clean_with_info_rules() -> None:
    result = cfn_lint("-c", "I", "--", "dr/regional.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_table_is_protected_and_shaped_as_designed() -> None:
    table = load_template(ROOT / "dr" / "regional.yaml")["Resources"]["MetricsTable"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["DeletionProtectionEnabled"] is True
    assert props["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
    assert [g["IndexName"] for g in props["GlobalSecondaryIndexes"]] == ["gsi1", "changes"]


def test_the_emulated_table_has_what_moto_skips_applied(emulator) -> None:
    ddb = emulator.client("dynamodb", "us-west-2")
    assert ddb.describe_time_to_live(TableName="devops-metrics-dev")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    backups = ddb.describe_continuous_backups(TableName="devops-metrics-dev")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def statements(stage: str) -> Iterator[dict[str, Any]]:
    yield from json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())["Statement"]


@pytest.mark.parametrize("stage", STAGES)
def test_policies_have_no_wildcard_action(stage: str) -> None:
    for statement in statements(stage):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        assert statement["Effect"] == "Allow" and "NotAction" not in statement


@pytest.mark.parametrize("stage", STAGES)
def test_table_permissions_name_the_stage_table_in_both_regions_only(stage: str) -> None:
    table = STAGE_TABLE[stage]
    expected = {f"arn:aws:dynamodb:{r}:*:table/{table}{suffix}" for r in REGIONS
                for suffix in ("", "/index/gsi1", "/index/changes", "/stream/*")}
    dynamodb = [s for s in statements(stage) if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert {arn for s in dynamodb for arn in s["Resource"]} == expected


# What the functions do to their tables, and the action each needs (a TransactWriteItems needs the
# action of each operation in it; the app's transactions hold only conditional Puts).
TABLE_ACTIONS = {
    "batch_get_item": "dynamodb:BatchGetItem",  # identity records, the sweep's version check, replica copies
    "batch_write_item": "dynamodb:BatchWriteItem",  # Table.batch_write: dr migrate
    "describe_table": "dynamodb:DescribeTable",  # deep health, readiness
    "describe_time_to_live": "dynamodb:DescribeTimeToLive",  # readiness
    "describe_continuous_backups": "dynamodb:DescribeContinuousBackups",  # readiness (point-in-time recovery)
    "get_item": "dynamodb:GetItem",  # failover records, one event, control items
    "put_item": "dynamodb:PutItem",  # control items, heartbeats
    "transact_write_items": "dynamodb:PutItem",  # events, identity records, tombstones, replica writes
    "query": "dynamodb:Query",  # every read route, the sweep's change index
    "scan": "dynamodb:Scan",  # the sweep's first run (no checkpoint yet) copies everything; no request path
    "delete_item": None,  # tests and tools only
}


@pytest.mark.parametrize("stage", STAGES)
def test_table_permissions_are_exactly_what_the_functions_call(stage: str) -> None:
    called = set(re.findall(r"self\.client\.(\w+)", (ROOT / "chalicelib" / "dynamodb.py").read_text()))
    assert called <= set(TABLE_ACTIONS), f"a new DynamoDB call needs its action here: {called - set(TABLE_ACTIONS)}"
    (tables,) = [s for s in statements(stage) if s["Sid"] == "MetricsTables"]
    assert set(tables["Action"]) == {action for op, action in TABLE_ACTIONS.items() if op in called and action}


def test_the_template_creates_one_secret_per_webhook_source_named_as_the_app_reads_it() -> None:
    resources = load_template(ROOT / "dr" / "regional.yaml")["Resources"]
    secrets = {r["Properties"]["Name"]["Fn::Sub"]: r for r in resources.values()
               if r["Type"] == "AWS::SecretsManager::Secret"}
    assert set(secrets) == {names.webhook_secret("${Stage}", source) for source in C.WEBHOOK_SOURCES}
    for secret in secrets.values():
        assert secret["DeletionPolicy"] == secret["UpdateReplacePolicy"] == "Retain"
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


@pytest.mark.parametrize("stage", STAGES)
def test_the_functions_may_read_exactly_their_stage_webhook_secrets_in_their_own_region(stage: str) -> None:
    """Their values in their own region only; that they exist (readiness), in both regions."""
    region = "us-west-2" if stage.endswith("-dr") else "us-east-1"
    table_stage = STAGE_TABLE[stage].split("-")[-1]

    def secret_arns(*regions: str) -> set[str]:  # a secret's ARN ends in -<six random characters>
        return {f"arn:aws:secretsmanager:{r}:*:secret:{names.webhook_secret(table_stage, s)}-??????"
                for r in regions for s in C.WEBHOOK_SOURCES}

    reads = [s for s in statements(stage) if any(a.startswith("secretsmanager:") for a in s["Action"])]
    values = [s for s in reads if "secretsmanager:GetSecretValue" in s["Action"]]
    assert [s["Action"] for s in values] == [["secretsmanager:GetSecretValue"]]
    assert set(values[0]["Resource"]) == secret_arns(region)
    (described,) = [s for s in reads if s not in values]
    assert [a for a in described["Action"] if a.startswith("secretsmanager:")] == ["secretsmanager:DescribeSecret"]
    assert {r for r in described["Resource"] if ":secretsmanager:" in r} == secret_arns(*REGIONS)


def test_config_declares_the_three_stages_with_their_own_policy() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage in STAGES:
        assert config["stages"][stage]["iam_policy_file"] == f"policy-{stage}.json"
        assert config["stages"][stage]["environment_variables"]["TABLE_NAME"] == STAGE_TABLE[stage]


def test_runtime_requirements_hold_no_aws_sdk_or_dev_tools() -> None:
    names = {line.split("==")[0].split(">=")[0].strip().lower()
             for line in (ROOT / "requirements.txt").read_text().splitlines() if line and not line.startswith("#")}
    assert names.isdisjoint({"boto3", "botocore", "chalice", "moto", "pytest", "cfn-lint", "hypothesis"})


@pytest.mark.infra
@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_chalice_package_output_is_cfn_lint_clean(packaged: dict[str, Path], stage: str) -> None:
    result = cfn_lint("-c", "I", "--", str(packaged[stage] / "sam.json"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.infra
@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_chalice_package_output_is_checkov_clean_with_every_skip_justified(packaged: dict[str, Path],
                                                                           stage: str) -> None:
    template = packaged[stage] / "sam.json"
    result = subprocess.run([str(CHECKOV), "--framework", "cloudformation", "--output", "json", "--quiet",
                             "--skip-download", "-f", str(template)], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "LOG_LEVEL": "ERROR"})
    report = json.loads(result.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 50
    for name, resource in json.loads(template.read_text())["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 40, f"{name}: {skip['id']} needs its reason"


@pytest.mark.infra
@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_the_package_carries_hash_checked_bytecode_for_every_module(packaged: dict[str, Path], stage: str) -> None:
    """Lambda's /var/task is read-only: a module without a valid .pyc is compiled on every cold start.
    chalice ships its dependencies as bare .py; make package adds a .pyc that matches each source by
    hash, so no modification time the zip gives them can make one stale."""
    missing, stale = bytecode_problems(packaged[stage] / "deployment.zip", REQUIRED_MODULES)
    assert missing == [] and stale == [], f"without a .pyc: {missing[:10]}; not matching by hash: {stale[:10]}"


@pytest.mark.infra
def test_make_deploy_ships_the_compiled_package_though_other_runs_wrote_bytecode(tmp_path: Path) -> None:
    """chalice deploy and chalice package share one package cache (.chalice/deployments/) keyed by a
    hash of the app's files, chalicelib/__pycache__ included. make deploy builds and compiles the
    package, then runs chalice on it, then the release settings on what it deployed; here `package`
    stands in for `deploy` and `render` for `apply`, which need AWS (apply runs against the emulator
    in tests/integration/test_release_apply.py)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    # what a test run or the local stack leaves behind: bytecode of modules app.py imports lazily
    subprocess.run([sys.executable, "-c", "import chalicelib.delivery, chalicelib.health_check"], cwd=ROOT,
                   env=env, check=True)
    result = subprocess.run(["make", "deploy", "STAGE=prod-dr", f"CHALICE_DEPLOY=package --stage prod-dr {tmp_path}",
                             f"RELEASE_APPLY={sys.executable} -m pipeline.release render --stage prod-dr "
                             f"{tmp_path}/sam.json"],
                            capture_output=True, text=True, cwd=ROOT, timeout=600,
                            env={**env, "AWS_DEFAULT_REGION": "us-west-2"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reusing existing deployment package" in result.stdout
    # the release step ran after chalice, on what chalice wrote
    assert "throttling 200/s burst 400" in result.stdout
    assert json.loads((tmp_path / "sam.json").read_text())["Resources"]["APIHandler"]["Properties"][
        "AutoPublishAlias"] == "live"
    missing, stale = bytecode_problems(tmp_path / "deployment.zip", REQUIRED_MODULES)
    assert missing == [] and stale == [], f"without a .pyc: {missing[:10]}; not matching by hash: {stale[:10]}"


@pytest.mark.infra
def test_make_deploy_fails_when_chalice_did_not_reuse_the_compiled_package() -> None:
    result = subprocess.run(["make", "deploy", "STAGE=prod-dr", "CHALICE_DEPLOY=--version"], capture_output=True,
                            text=True, cwd=ROOT, timeout=600, env={**os.environ, "AWS_DEFAULT_REGION": "us-west-2"})
    assert result.returncode != 0
    assert "instead of reusing the compiled one" in result.stdout + result.stderr


@pytest.mark.infra
def test_deployed_function_names_follow_the_app_stage_naming_the_health_check_reads(
        packaged: dict[str, Path]) -> None:
    """The pipeline deploys stacks named devops-metrics-<stage>[-dr]-app; each function is named
    devops-metrics-<stage>[-dr][-<function>], as chalice deploy names them."""
    template = json.loads((packaged["prod"] / "sam.json").read_text())["Resources"]
    prefix = {"Fn::Select": [0, {"Fn::Split": ["-app", {"Ref": "AWS::StackName"}]}]}
    assert template["APIHandler"]["Properties"]["FunctionName"] == prefix
    assert template["HealthCheck"]["Properties"]["FunctionName"] == {"Fn::Join": ["-", [prefix, "health_check"]]}
    # the pipeline's stack names, as pipeline/pipeline.yaml gives them, split as the template does
    stacks = sorted({str(node["StackName"]["Fn::Sub"]).replace("${Stage}", "prod")
                     for node in _walk(load_template(ROOT / "pipeline" / "pipeline.yaml"))
                     if isinstance(node, dict) and isinstance(node.get("StackName"), dict)})
    assert [name.split("-app")[0] for name in stacks] == ["devops-metrics-prod", "devops-metrics-prod-dr"]
    queue = template["PipelineEventsDeadLetterQueue"]["Properties"]["QueueName"]  # what the alarm watches
    assert queue == {"Fn::Join": ["-", [prefix, "pipeline-events-dlq"]]}
    assert all(r["Properties"].get("Tracing") == "Active"
               for r in template.values() if r["Type"] == "AWS::Serverless::Function")


@pytest.mark.infra
def test_the_package_requires_iam_auth_on_metrics_and_teams_and_none_on_health_the_document_and_webhooks(
        packaged: dict[str, Path]) -> None:
    """The webhook sources cannot sign SigV4: their route is public at API Gateway, and each delivery
    is authenticated by its source's signature (tests/integration/test_webhooks.py)."""
    template = json.loads((packaged["prod"] / "sam.json").read_text())
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert {"/teams/{team}", "/metrics/{kind}/{event_id}", "/health", "/openapi.json",
            "/webhooks/{source}"} <= set(paths)
    for path, methods in paths.items():
        for method, operation in methods.items():
            if path.startswith(("/metrics", "/teams")):
                assert operation.get("security") == [{"sigv4": []}], (path, method)
            else:
                assert path in ("/health", "/openapi.json", "/webhooks/{source}"), (path, method)
                assert "security" not in operation, (path, method)


@pytest.mark.infra
def test_the_package_has_every_function_of_the_app(packaged: dict[str, Path]) -> None:
    template = json.loads((packaged["prod"] / "sam.json").read_text())
    functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions == {"APIHandler", "ReplicateStream", "ReplicationSweep", "RecordPipelineExecution",
                         "HealthCheck", "PublishDora", "RenewLease", "ReadinessCheck"}
    stream = template["Resources"]["ReplicateStream"]["Properties"]["Events"]
    assert next(iter(stream.values()))["Properties"]["StartingPosition"] == "TRIM_HORIZON"


@pytest.mark.infra
def test_the_package_does_not_bundle_boto3(packaged: dict[str, Path]) -> None:
    names = zipfile.ZipFile(packaged["prod"] / "deployment.zip").namelist()
    assert "app.py" in names and any(n.startswith("pydantic/") for n in names)
    assert any(n.startswith("aws_xray_sdk/") for n in names)  # from vendor/, without its botocore
    assert not any(n.startswith(("boto3/", "botocore/", "moto/", "local/", "tests/", "dashboards/")) for n in names)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from _walk(child)


def test_the_global_endpoint_exists_only_with_its_parameters_and_checks_for_an_active_region() -> None:
    template = load_template(ROOT / "dr" / "regional.yaml")
    endpoint = {"ApiCertificate", "ApiDomainName", "ApiBasePathMapping", "ApiHealthCheck", "ApiFailoverRecord"}
    resources = template["Resources"]
    assert {name for name, r in resources.items() if r.get("Condition") == "HasGlobalEndpoint"} == endpoint
    assert all(template["Parameters"][p]["Default"] == "" for p in ("HostedZoneId", "DomainName", "RestApiId"))
    check = resources["ApiHealthCheck"]["Properties"]["HealthCheckConfig"]
    assert check["SearchString"] == '"role":"active"' and check["Type"] == "HTTPS_STR_MATCH"
    assert check["ResourcePath"] == {"Fn::Sub": "/${ApiStage}/health"}
    # the RTO budget in docs/dr.md: 10 s x 3 for the health check, and a 60 s TTL
    assert (check["RequestInterval"], check["FailureThreshold"]) == (10, 3)
    record = resources["ApiFailoverRecord"]["Properties"]
    assert record["TTL"] == "60" and record["Failover"] == {"Fn::If": ["IsPrimaryRegion", "PRIMARY", "SECONDARY"]}
    assert record["HealthCheckId"] == {"Fn::Ref": "ApiHealthCheck"}
    assert resources["ApiDomainName"]["Properties"]["SecurityPolicy"] == "TLS_1_2"
    tags = {t["Key"] for t in resources["ApiHealthCheck"]["Properties"]["HealthCheckTags"]}
    assert {"application", "stage", "region"} <= tags  # how python -m dr finds them

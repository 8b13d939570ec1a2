"""How a release reaches traffic, in the template `make package` writes and the pipeline deploys
(pipeline/release.py): the live alias and CodeDeploy's traffic shift with its rollback alarms, the
stage's throttling, and API Gateway's own answers in the service's error shape."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import constants as C
from ops.templates import ROOT
from pipeline import release
from tests.infra.policies import actions, policy_statements

pytestmark = pytest.mark.infra

SETTINGS = json.loads(release.SETTINGS_FILE.read_text())


def sam(packaged: dict[str, Path], stage: str) -> dict[str, Any]:
    return json.loads((packaged[stage] / "sam.json").read_text())


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_the_api_function_shifts_to_each_release_as_a_canary_rolled_back_by_its_alarms(
        packaged: dict[str, Path], stage: str) -> None:
    resources = sam(packaged, stage)["Resources"]
    function = resources["APIHandler"]["Properties"]
    assert function["AutoPublishAlias"] == "live"
    assert function["DeploymentPreference"] == {
        "Type": "Canary10Percent5Minutes",  # 10% for 5 minutes, then all, in prod and prod-dr
        "Alarms": [{"Ref": "CanaryErrorsAlarm"}, {"Ref": "CanaryApi5xxAlarm"}],
        "Role": {"Fn::GetAtt": ["CodeDeployRole", "Arn"]}}
    assert SETTINGS[stage]["traffic_shift"] == "Canary10Percent5Minutes"
    # the errors alarm watches the new version only: the alias, and the version it shifts to
    errors = resources["CanaryErrorsAlarm"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert {d["Name"]: d["Value"] for d in errors["Dimensions"]} == {
        "FunctionName": {"Ref": "APIHandler"}, "Resource": {"Fn::Sub": "${APIHandler}:live"},
        "ExecutedVersion": {"Fn::GetAtt": ["APIHandler.Version", "Version"]}}
    assert errors["Threshold"] == SETTINGS[stage]["rollback"]["function_errors"]
    # the 5XX alarm cannot be scoped to a version in API Gateway's metrics: a count, so no dilution
    api_5xx = resources["CanaryApi5xxAlarm"]["Properties"]
    assert (api_5xx["Namespace"], api_5xx["MetricName"], api_5xx["Statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    assert {d["Name"]: d["Value"] for d in api_5xx["Dimensions"]} == {"ApiName": C.APP_NAME, "Stage": C.API_STAGE}
    assert api_5xx["Threshold"] == SETTINGS[stage]["rollback"]["api_5xx"]
    assert errors["Period"] == api_5xx["Period"] == 60 and errors["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_codedeploy_may_shift_only_this_alias_and_read_only_its_alarms(packaged: dict[str, Path], stage: str) -> None:
    resources = sam(packaged, stage)["Resources"]
    statements = {s["Sid"]: s for s in policy_statements(resources["CodeDeployRole"]["Properties"]["Policies"])}
    assert set(statements) == {"ShiftTheAlias", "WatchTheRollbackAlarms"}
    assert statements["WatchTheRollbackAlarms"]["Action"] == "cloudwatch:DescribeAlarms"
    assert all(r["Fn::Sub"][0].endswith(":alarm:${Name}-canary-*")
               for r in statements["WatchTheRollbackAlarms"]["Resource"])
    assert [r["Fn::Sub"][0].rsplit(":", 2)[1:] for r in statements["ShiftTheAlias"]["Resource"]] == [
        ["function", "${Name}"], ["${Name}", "*"]]
    # and no policy anywhere in the package allows a wildcard action
    everything = policy_statements(resources)
    assert len(everything) > 20
    assert all("*" not in a for s in everything if s["Effect"] == "Allow" for a in actions(s))


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_api_gateway_invokes_the_alias_so_the_canary_gets_its_share(packaged: dict[str, Path], stage: str) -> None:
    resources = sam(packaged, stage)["Resources"]
    uris = [operation["x-amazon-apigateway-integration"]["uri"]
            for methods in resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"].values()
            for operation in methods.values() if "x-amazon-apigateway-integration" in operation]
    assert len(uris) == (ROOT / "app.py").read_text().count("@app.route(")  # every route
    assert all(uri == {"Fn::Sub": ["arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/"
                                   "functions/${Alias}/invocations", {"Alias": {"Ref": "APIHandler.Alias"}}]}
               for uri in uris)
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": "APIHandler.Alias"}


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_only_the_api_function_is_aliased_and_the_stream_runs_one_batch_per_shard(
        packaged: dict[str, Path], stage: str) -> None:
    resources = sam(packaged, stage)["Resources"]
    functions = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 8
    aliased = {name for name, p in functions.items() if "AutoPublishAlias" in p or "DeploymentPreference" in p}
    assert aliased == {"APIHandler"}
    (stream,) = [e["Properties"] for e in functions["ReplicateStream"]["Events"].values() if e["Type"] == "DynamoDB"]
    assert stream.get("ParallelizationFactor", 1) == 1


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_the_stage_is_throttled_as_its_settings_say(packaged: dict[str, Path], stage: str) -> None:
    api = sam(packaged, stage)["Resources"]["RestAPI"]["Properties"]
    assert api["MethodSettings"] == [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": SETTINGS[stage]["throttling"]["rate_per_second"],
        "ThrottlingBurstLimit": SETTINGS[stage]["throttling"]["burst"]}]


def filled(template: str) -> Any:
    """A gateway response template as API Gateway fills it in (its $context values quoted as it quotes them)."""
    text = template.replace("$context.error.messageString", '"Missing Authentication Token"')
    return json.loads(text.replace("$context.requestId", "c0ffee00-0000-4000-8000-000000000000"))


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_api_gateways_own_answers_use_the_error_shape_and_the_correlation_id(
        packaged: dict[str, Path], stage: str) -> None:
    body = sam(packaged, stage)["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN", "ACCESS_DENIED", "THROTTLED"} <= set(
        responses)
    for kind, response in responses.items():
        shaped = filled(response["responseTemplates"]["application/json"])
        assert set(shaped) == {"error"} and set(shaped["error"]) == {"code", "message", "details"}, kind
        assert re.fullmatch(r"[a-z_]+", shaped["error"]["code"]) and shaped["error"]["message"]
        assert shaped["error"]["details"] == [{"correlation_id": "c0ffee00-0000-4000-8000-000000000000"}]
        assert response["responseParameters"][f"gatewayresponse.header.{C.CORRELATION_HEADER}"] == "context.requestId"
    assert (responses["THROTTLED"]["statusCode"], filled(responses["THROTTLED"]["responseTemplates"][
        "application/json"])["error"]["code"]) == ("429", "throttled")
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    unsigned = filled(responses["MISSING_AUTHENTICATION_TOKEN"]["responseTemplates"]["application/json"])["error"]
    assert "SigV4" in unsigned["message"] and "No route matches" in unsigned["message"]


# -- after CloudFormation's Serverless transform: what the stack really holds ------------------------

def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_after_the_transform_codedeploy_shifts_the_live_alias_and_rolls_back_on_either_alarm(
        transformed: dict[str, dict[str, Any]], stage: str) -> None:
    template = transformed[stage]
    (alias_id, alias), = of_type(template, "AWS::Lambda::Alias").items()
    (version_id, _), = of_type(template, "AWS::Lambda::Version").items()
    (group_id, group), = of_type(template, "AWS::CodeDeploy::DeploymentGroup").items()
    assert len(of_type(template, "AWS::CodeDeploy::Application")) == 1
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {"Ref": group_id}
    group = group["Properties"]
    assert group["DeploymentConfigName"] == {"Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}",
                                                         {"ConfigName": "Canary10Percent5Minutes"}]}
    assert group["AlarmConfiguration"] == {"Enabled": True, "Alarms": [
        {"Name": {"Ref": "CanaryErrorsAlarm"}}, {"Name": {"Ref": "CanaryApi5xxAlarm"}}]}
    assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
    assert group["ServiceRoleArn"] == {"Fn::GetAtt": ["CodeDeployRole", "Arn"]}
    # the errors alarm follows the version this release publishes
    dimensions = {d["Name"]: d["Value"] for d in template["Resources"]["CanaryErrorsAlarm"]["Properties"]["Dimensions"]}
    assert dimensions["ExecutedVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    # API Gateway invokes the alias: every integration, and the permission
    body = of_type(template, "AWS::ApiGateway::RestApi")["RestAPI"]["Properties"]["Body"]
    uris = [op["x-amazon-apigateway-integration"]["uri"] for methods in body["paths"].values()
            for op in methods.values() if "x-amazon-apigateway-integration" in op]
    assert uris and all(uri["Fn::Sub"][1] == {"Alias": {"Ref": alias_id}} for uri in uris)
    assert template["Resources"]["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": alias_id}
    assert set(release.GATEWAY_RESPONSES) == set(body["x-amazon-apigateway-gateway-responses"])
    (stage_resource,) = of_type(template, "AWS::ApiGateway::Stage").values()
    assert stage_resource["Properties"]["StageName"] == C.API_STAGE
    assert stage_resource["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] == SETTINGS[stage][
        "throttling"]["rate_per_second"]


@pytest.mark.parametrize("stage", ["prod", "prod-dr"])
def test_the_transformed_template_is_cfn_lint_clean_with_info_rules(
        transformed: dict[str, dict[str, Any]], stage: str, tmp_path: Path) -> None:
    path = tmp_path / f"{stage}.json"
    path.write_text(json.dumps(transformed[stage]))
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "-c", "I", "--", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dev_shifts_all_at_once_and_every_stage_has_settings(packaged: dict[str, Path]) -> None:
    assert set(SETTINGS) == {"dev", "dev-dr", "prod", "prod-dr"}
    for stage in ("dev", "dev-dr"):
        rendered = release.render(sam(packaged, "prod"), release.load_settings(stage))
        assert rendered["Resources"]["APIHandler"]["Properties"]["DeploymentPreference"]["Type"] == "AllAtOnce"


def test_settings_that_are_not_valid_are_refused_naming_the_field(tmp_path: Path) -> None:
    broken = tmp_path / "release.json"
    broken.write_text(json.dumps({"prod": {**SETTINGS["prod"], "traffic_shift": "Canary50Percent",
                                           "throttling": {"rate_per_second": 0, "burst": 10}}}))
    with pytest.raises(release.SettingsError, match=r"traffic_shift: .*throttling\.rate_per_second: "):
        release.load_settings("prod", broken)
    with pytest.raises(release.SettingsError, match="has no settings for the stage 'qa'"):
        release.load_settings("qa", broken)

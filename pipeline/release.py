"""How a release reaches traffic: the settings of pipeline/release.json, rendered into the SAM
template `chalice package` writes (`make package` runs this on it).

    python -m pipeline.release render --stage prod build/primary/sam.json   # rewrites the file in place
    python -m pipeline.release apply --stage prod    # the API chalice deploy made (make deploy runs it)

What it adds, per Chalice stage (dev, dev-dr, prod, prod-dr):
- **Canary and rollback.** The API function is published as a new version behind the alias `live`
  (SAM's AutoPublishAlias), and CodeDeploy shifts the alias to it as `traffic_shift` says
  (Canary10Percent5Minutes in prod and prod-dr: 10% for 5 minutes, then all; AllAtOnce in dev).
  Two alarms roll it back while it shifts:
  - the new version's errors: AWS/Lambda `Errors` for the alias and `ExecutedVersion` = the new
    version, so the old version's traffic cannot dilute them;
  - the stage's 5XX answers: API Gateway publishes no per-version metric, so this one counts every
    answer; it is a count, not a rate, so old traffic cannot mask the canary's either.
  API Gateway invokes the alias, not the unpublished function. The scheduled and stream functions
  are not aliased: they keep updating in place, and Lambda runs one batch per stream shard at a time,
  so the stream handler never runs two versions against the same shard.
- **Stage throttling**: `throttling.rate_per_second` and `throttling.burst` on every method of the
  stage (API Gateway applies them per method).
- **Gateway responses**: API Gateway's own answers (an unknown route or an unsigned request, a
  denied or badly signed one, throttling, a timeout) in the service's error shape, with the
  `X-Correlation-Id` header (API Gateway's request id).

`apply` gives an API that `chalice deploy` made (`make deploy` runs it right after) the throttling
and the gateway responses, through API Gateway's API, and deploys the stage again so they take
effect. chalice deploy has no aliases or CodeDeploy, so the canary is the packaged template's only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib import clients
from chalicelib import constants as C
from ops.templates import ROOT

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient

SETTINGS_FILE = ROOT / "pipeline" / "release.json"
CHALICE_DEPLOYED = ROOT / ".chalice" / "deployed"  # chalice deploy's records
ALIAS = "live"
API_FUNCTION = "APIHandler"  # chalice package's logical ids
API = "RestAPI"
API_PERMISSION = "APIHandlerInvokePermission"
ERRORS_ALARM = "CanaryErrorsAlarm"
API_5XX_ALARM = "CanaryApi5xxAlarm"
CODEDEPLOY_ROLE = "CodeDeployRole"
PERIOD_SECONDS = 60  # the alarms' period: a 5-minute canary is judged minute by minute

TrafficShift = Literal[
    "AllAtOnce", "Canary10Percent5Minutes", "Canary10Percent10Minutes", "Canary10Percent15Minutes",
    "Canary10Percent30Minutes", "Linear10PercentEvery1Minute", "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes", "Linear10PercentEvery10Minutes"]


class Throttling(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate_per_second: float = Field(gt=0, le=10_000)  # API Gateway's account default is 10,000
    burst: int = Field(gt=0, le=5_000)


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    function_errors: int = Field(ge=0)  # roll back when the new version has more errors than this in a minute
    api_5xx: int = Field(ge=0)  # ... or the stage more 5XX answers than this in a minute


class StageRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")
    traffic_shift: TrafficShift
    throttling: Throttling
    rollback: Rollback


class SettingsError(ValueError):
    """pipeline/release.json lacks the stage or does not hold valid settings for it."""


def load_settings(stage: str, path: Path = SETTINGS_FILE) -> StageRelease:
    stages = json.loads(path.read_text())
    if stage not in stages:
        raise SettingsError(f"{path.name} has no settings for the stage {stage!r} (it has {', '.join(stages)})")
    try:
        return StageRelease.model_validate(stages[stage])
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"{path.name}, stage {stage!r}: {problems}") from None


# The service's error shape (chalicelib.errors.error_body) for API Gateway's own answers. The
# message is API Gateway's, except where it is known to mislead.
GATEWAY_RESPONSES: dict[str, tuple[int | None, str, str | None]] = {  # type: (status, code, message)
    "DEFAULT_4XX": (None, "bad_request", None),
    "DEFAULT_5XX": (None, "gateway_error", None),
    "MISSING_AUTHENTICATION_TOKEN": (403, "missing_authentication",
                                     "No route matches this method and path, or the route needs a "
                                     "SigV4-signed request (IAM auth)."),
    "ACCESS_DENIED": (403, "access_denied", None),
    "INVALID_SIGNATURE": (403, "invalid_signature", None),
    "EXPIRED_TOKEN": (403, "expired_token", None),
    "UNAUTHORIZED": (401, "unauthorized", None),
    "THROTTLED": (429, "throttled", "Too many requests: the stage's rate limit was reached; retry after a second."),
    "REQUEST_TOO_LARGE": (413, "body_too_large", None),
    "INTEGRATION_TIMEOUT": (504, "timeout", None),
    "INTEGRATION_FAILURE": (502, "integration_failure", None),
}


def gateway_responses() -> dict[str, Any]:
    """x-amazon-apigateway-gateway-responses: every type above in the error shape, with the correlation id."""
    responses: dict[str, Any] = {}
    for kind, (status, code, message) in GATEWAY_RESPONSES.items():
        text = json.dumps(message) if message else "$context.error.messageString"
        template = (f'{{"error": {{"code": "{code}", "message": {text}, '
                    '"details": [{"correlation_id": "$context.requestId"}]}}')
        parameters = {f"gatewayresponse.header.{C.CORRELATION_HEADER}": "context.requestId"}
        if kind == "THROTTLED":
            parameters["gatewayresponse.header.Retry-After"] = "'1'"
        responses[kind] = {"responseParameters": parameters,
                           "responseTemplates": {"application/json": template},
                           **({"statusCode": str(status)} if status is not None else {})}
    return responses


def _function_name() -> dict[str, Any]:
    """The API function's name, as chalice package derives it: the stack name without its -app."""
    return {"Fn::Select": [0, {"Fn::Split": ["-app", {"Ref": "AWS::StackName"}]}]}


def _alarms(settings: StageRelease) -> dict[str, Any]:
    # As SAM's guide to gradual deployments scopes them: the alias, and the version it shifts to.
    new_version = {"Fn::GetAtt": [f"{API_FUNCTION}.Version", "Version"]}
    name = _function_name()
    rolls_back = "CodeDeploy rolls the release back while it shifts traffic"
    return {
        ERRORS_ALARM: {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": {"Fn::Sub": ["${Name}-canary-errors", {"Name": name}]},
                "AlarmDescription": {"Fn::Sub": [
                    f"The new version of ${{Name}} (alias {ALIAS}) reported more than "
                    f"{settings.rollback.function_errors} errors in a minute: {rolls_back}.", {"Name": name}]},
                "Namespace": "AWS/Lambda", "MetricName": "Errors",
                "Dimensions": [
                    {"Name": "FunctionName", "Value": {"Ref": API_FUNCTION}},
                    {"Name": "Resource", "Value": {"Fn::Sub": f"${{{API_FUNCTION}}}:{ALIAS}"}},
                    {"Name": "ExecutedVersion", "Value": new_version},
                ],
                "Statistic": "Sum", "Period": PERIOD_SECONDS, "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold", "Threshold": settings.rollback.function_errors,
                "TreatMissingData": "notBreaching",  # no invocations of the new version yet, no errors
            },
        },
        API_5XX_ALARM: {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": {"Fn::Sub": ["${Name}-canary-api-5xx", {"Name": name}]},
                "AlarmDescription": {"Fn::Sub": [
                    f"The API (stage {C.API_STAGE}) of ${{Name}} returned more than {settings.rollback.api_5xx} "
                    f"5XX answers in a minute: {rolls_back}. API Gateway has no per-version metric, so this "
                    "counts the old version's answers too.", {"Name": name}]},
                "Namespace": "AWS/ApiGateway", "MetricName": "5XXError",
                "Dimensions": [{"Name": "ApiName", "Value": C.APP_NAME}, {"Name": "Stage", "Value": C.API_STAGE}],
                "Statistic": "Sum", "Period": PERIOD_SECONDS, "EvaluationPeriods": 1,
                "ComparisonOperator": "GreaterThanThreshold", "Threshold": settings.rollback.api_5xx,
                "TreatMissingData": "notBreaching",  # no requests, no errors
            },
        },
    }


def _codedeploy_role() -> dict[str, Any]:
    """What CodeDeploy needs to shift the alias and watch the two alarms, and nothing more (in place
    of the AWSCodeDeployRoleForLambda managed policy, which allows every function and topic)."""
    arn = "arn:${AWS::Partition}"
    name = _function_name()
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": "CodeDeploy shifts the API function's live alias with this role.",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "codedeploy.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": "shift-traffic", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "ShiftTheAlias", "Effect": "Allow",
                 "Action": ["lambda:GetAlias", "lambda:GetProvisionedConcurrencyConfig", "lambda:UpdateAlias"],
                 "Resource": [
                     {"Fn::Sub": [f"{arn}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{Name}}",
                                  {"Name": name}]},
                     {"Fn::Sub": [f"{arn}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{Name}}:*",
                                  {"Name": name}]}]},
                {"Sid": "WatchTheRollbackAlarms", "Effect": "Allow", "Action": "cloudwatch:DescribeAlarms",
                 "Resource": [
                     {"Fn::Sub": [f"{arn}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:${{Name}}-canary-*",
                                  {"Name": name}]}]},
            ]}}],
        },
    }


_INVOKE_PREFIX = "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"


def _invoke_uri(uri: Any) -> dict[str, Any]:
    """chalice's integration URI with the alias (SAM's `APIHandler.Alias`) in place of the function.
    The alias goes in as a Sub variable: `${APIHandler.Alias}` in the text is SAM's to resolve, and
    cfn-lint, which reads the template before SAM has, does not know it there."""
    aliased = {"Fn::Sub": [f"{_INVOKE_PREFIX}${{Alias}}/invocations", {"Alias": {"Ref": f"{API_FUNCTION}.Alias"}}]}
    if uri not in ({"Fn::Sub": f"{_INVOKE_PREFIX}${{{API_FUNCTION}.Arn}}/invocations"}, aliased):
        raise SettingsError(f"an integration URI is neither chalice's nor the alias: {json.dumps(uri)}")
    return aliased


def render(template: dict[str, Any], settings: StageRelease) -> dict[str, Any]:
    """`template` (chalice package's sam.json) with the release settings in it; the input is not changed.
    A template rendered before renders again with the new settings."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    resources = out["Resources"]
    missing = [r for r in (API_FUNCTION, API, API_PERMISSION) if r not in resources]
    if missing:
        raise SettingsError(f"the template has no {', '.join(missing)}: is it chalice package's sam.json?")

    function = resources[API_FUNCTION]["Properties"]
    function["AutoPublishAlias"] = ALIAS
    function["DeploymentPreference"] = {
        "Type": settings.traffic_shift,
        "Alarms": [{"Ref": ERRORS_ALARM}, {"Ref": API_5XX_ALARM}],
        "Role": {"Fn::GetAtt": [CODEDEPLOY_ROLE, "Arn"]},
    }

    # API Gateway invokes the alias, so the canary's share of requests reaches the new version.
    api = resources[API]["Properties"]
    body = api["DefinitionBody"]
    for methods in body["paths"].values():
        for operation in methods.values():
            integration = operation.get("x-amazon-apigateway-integration", {})
            if "uri" in integration:
                integration["uri"] = _invoke_uri(integration["uri"])
    resources[API_PERMISSION]["Properties"]["FunctionName"] = {"Ref": f"{API_FUNCTION}.Alias"}

    api["MethodSettings"] = [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": settings.throttling.rate_per_second,
        "ThrottlingBurstLimit": settings.throttling.burst,
    }]
    body["x-amazon-apigateway-gateway-responses"] = gateway_responses()

    resources.update(_alarms(settings))
    resources[CODEDEPLOY_ROLE] = _codedeploy_role()
    return out


# -- an API chalice deploy made -----------------------------------------------------------------------

def deployed_rest_api(stage: str, deployed: Path = CHALICE_DEPLOYED) -> str:
    """The id of the REST API `chalice deploy --stage <stage>` made (.chalice/deployed/<stage>.json)."""
    record = deployed / f"{stage}.json"
    if not record.exists():
        raise SettingsError(f"{record} does not exist: run chalice deploy --stage {stage} first")
    apis = [r["rest_api_id"] for r in json.loads(record.read_text()).get("resources", [])
            if r.get("resource_type") == "rest_api"]
    if not apis:
        raise SettingsError(f"{record} names no REST API")
    return str(apis[0])


def apply_to_api(client: APIGatewayClient, rest_api_id: str, settings: StageRelease) -> None:
    """The gateway responses on a deployed API, a new deployment of its stage (gateway responses take
    effect with one), then the stage's throttling (a stage setting, kept across deployments)."""
    for kind, response in gateway_responses().items():
        status = {"statusCode": response["statusCode"]} if "statusCode" in response else {}
        client.put_gateway_response(restApiId=rest_api_id, responseType=kind,  # type: ignore[arg-type]
                                    responseParameters=response["responseParameters"],
                                    responseTemplates=response["responseTemplates"], **status)
    client.create_deployment(restApiId=rest_api_id, stageName=C.API_STAGE,
                             description="gateway responses of pipeline/release.json")
    client.update_stage(restApiId=rest_api_id, stageName=C.API_STAGE, patchOperations=[
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": f"{settings.throttling.rate_per_second:g}"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(settings.throttling.burst)},
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.release", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    render_command = commands.add_parser("render", help="write the settings into chalice package's sam.json")
    render_command.add_argument("--stage", required=True, help="the Chalice stage (dev, dev-dr, prod, prod-dr)")
    render_command.add_argument("template", type=Path, help="chalice package's sam.json, rewritten in place")
    apply_command = commands.add_parser("apply", help="throttling and gateway responses on chalice deploy's API")
    apply_command.add_argument("--stage", required=True, help="the Chalice stage (dev, dev-dr, prod, prod-dr)")
    apply_command.add_argument("--region", help="the API's region (default: AWS_DEFAULT_REGION, as chalice's)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.stage)
        if args.command == "render":
            rendered = render(json.loads(args.template.read_text()), settings)
            args.template.write_text(json.dumps(rendered, indent=2) + "\n")
            print(f"{args.template}: alias {ALIAS}, {settings.traffic_shift}, throttling "
                  f"{settings.throttling.rate_per_second:g}/s burst {settings.throttling.burst}, "
                  f"{len(GATEWAY_RESPONSES)} gateway responses")
            return 0
        region = args.region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if not region:
            raise SettingsError("no region: give --region or set AWS_DEFAULT_REGION, as for chalice deploy")
        api = deployed_rest_api(args.stage)
        apply_to_api(clients.apigateway(region, "operator"), api, settings)
    except SettingsError as error:
        print(f"pipeline.release: {error}", file=sys.stderr)
        return 2
    print(f"API {api} ({region}, stage {C.API_STAGE}): throttling {settings.throttling.rate_per_second:g}/s "
          f"burst {settings.throttling.burst}, {len(GATEWAY_RESPONSES)} gateway responses, deployed again")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make deploy`'s last step (python -m pipeline.release apply): the stage's throttling and API
Gateway's answers in the service's error shape, on an API as chalice deploy leaves it, in the emulator."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import constants as C
from ops.templates import ROOT
from pipeline import release


def chalice_deployed_api(emulator, region: str, tmp_path: Path, stage: str) -> str:
    """A REST API with an `api` stage, and the record chalice deploy writes for it."""
    apigateway = emulator.client("apigateway", region)
    api = apigateway.create_rest_api(name=C.APP_NAME)["id"]
    root = apigateway.get_resources(restApiId=api)["items"][0]["id"]
    apigateway.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigateway.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigateway.create_deployment(restApiId=api, stageName=C.API_STAGE)
    (tmp_path / f"{stage}.json").write_text(json.dumps({"resources": [
        {"name": "api_handler", "resource_type": "lambda_function", "lambda_arn": "arn:aws:lambda:..."},
        {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": api,
         "rest_api_url": f"https://{api}.execute-api.{region}.amazonaws.com/api/"}]}))
    return api


def test_apply_sets_the_stage_throttling_and_the_gateway_responses_then_deploys(emulator, tmp_path: Path) -> None:
    api = chalice_deployed_api(emulator, "us-west-2", tmp_path, "prod-dr")
    apigateway = emulator.client("apigateway", "us-west-2")
    deployments_before = len(apigateway.get_deployments(restApiId=api)["items"])
    settings = release.load_settings("prod-dr")
    assert release.deployed_rest_api("prod-dr", tmp_path) == api
    release.apply_to_api(apigateway, api, settings)
    stage = apigateway.get_stage(restApiId=api, stageName=C.API_STAGE)
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == settings.throttling.rate_per_second
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == settings.throttling.burst
    responses = {r["responseType"]: r for r in apigateway.get_gateway_responses(restApiId=api)["items"]}
    throttled = responses["THROTTLED"]
    assert throttled["statusCode"] == "429"
    assert throttled["responseParameters"][f"gatewayresponse.header.{C.CORRELATION_HEADER}"] == "context.requestId"
    assert '"code": "throttled"' in throttled["responseTemplates"]["application/json"]
    assert set(release.GATEWAY_RESPONSES) <= set(responses)
    assert len(apigateway.get_deployments(restApiId=api)["items"]) == deployments_before + 1


def test_apply_without_a_chalice_deploy_says_what_to_run_first(tmp_path: Path) -> None:
    with pytest.raises(release.SettingsError, match="run chalice deploy --stage prod first"):
        release.deployed_rest_api("prod", tmp_path)
    done = subprocess.run([sys.executable, "-m", "pipeline.release", "apply", "--stage", "qa", "--region",
                           "us-east-1"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "has no settings for the stage 'qa'" in done.stderr

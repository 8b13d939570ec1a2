"""The pipeline's smoke test (pipeline/smoke.py) where it touches AWS: the signature on its requests
and the endpoints it reads from the app stacks. Its checks run against the local stack in
tests/e2e/test_local_stack.py."""
from __future__ import annotations

import json

import pytest
import requests

from pipeline import smoke


def test_requests_are_signed_for_execute_api_in_the_region_with_the_body_hashed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSMOKETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    event = smoke.probe_event("abc", smoke.datetime.now(smoke.timezone.utc))
    prepared = requests.Request("POST", "https://abc123.execute-api.us-west-2.amazonaws.com/api/metrics",
                                json=event).prepare()
    smoke._sign(prepared, "us-west-2")
    authorization = prepared.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDSMOKETEST/")
    assert "/us-west-2/execute-api/aws4_request" in authorization
    assert "x-amz-date" in authorization.split("SignedHeaders=")[1].split(",")[0]
    assert json.loads(prepared.body) == event  # what was signed is what is sent


def test_the_endpoints_are_the_app_stacks_outputs(emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    url = "https://abc123.execute-api.us-west-2.amazonaws.com/api/"
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"EndpointURL": {"Value": url}}}
    cfn = emulator.client("cloudformation", "us-west-2")
    cfn.create_stack(StackName="devops-metrics-prod-dr-app", TemplateBody=json.dumps(template))
    assert smoke.stack_endpoint("prod", "us-west-2") == url
    with pytest.raises(smoke.SmokeFailed, match="the app stack devops-metrics-prod-app in us-east-1 could not be read"):
        smoke.stack_endpoint("prod", "us-east-1")  # not deployed there

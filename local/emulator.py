"""moto's server (every region in one process) and the project's CloudFormation templates in it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
REGIONAL_TEMPLATE = ROOT / "dr" / "regional.yaml"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def stack_name(stage: str) -> str:
    return f"devops-metrics-{stage}"


@dataclass
class Emulator:
    """A running moto server process."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, port: int, log_path: Path | None = None) -> Emulator:
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        emulator = cls(f"http://127.0.0.1:{port}", process)
        emulator.wait_ready()
        return emulator

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"moto's server exited with code {self.process.returncode} "
                                   f"(is port {self.endpoint.rsplit(':', 1)[1]} already in use?)")
            try:
                requests.get(self.endpoint + "/moto-api/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"moto's server did not answer at {self.endpoint} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def env(self, region: str) -> dict[str, str]:
        """Environment variables that point boto3 (and so the app) at this emulator."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": region}

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML template as data; short-form intrinsics (!Sub, !Ref...) are kept as text."""
    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return {f"Fn::{suffix}": loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {f"Fn::{suffix}": loader.construct_sequence(node, deep=True)}
        return {f"Fn::{suffix}": loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]

    Loader.add_multi_constructor("!", intrinsic)
    with open(path) as handle:
        return yaml.load(handle, Loader=Loader)  # noqa: S506 - SafeLoader subclass


def deploy_regional_stack(emulator: Emulator, region: str, stage: str) -> dict[str, str]:
    """Create (or keep) the regional stack in one region and return its outputs.

    moto's CloudFormation creates the table and topic but silently skips a few table properties;
    those are applied here through the DynamoDB API, from the same template, so the emulated table
    is configured as the template says.
    """
    cfn = emulator.client("cloudformation", region)
    name = stack_name(stage)
    existing = {s["StackName"] for s in cfn.list_stacks(StackStatusFilter=["CREATE_COMPLETE"])["StackSummaries"]}
    if name not in existing:
        cfn.create_stack(StackName=name, TemplateBody=REGIONAL_TEMPLATE.read_text(),
                         Parameters=[{"ParameterKey": "Stage", "ParameterValue": stage}])
        cfn.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}
    _apply_skipped_table_properties(emulator, region, outputs["TableName"])
    return outputs


def _apply_skipped_table_properties(emulator: Emulator, region: str, table_name: str) -> None:
    props = load_template(REGIONAL_TEMPLATE)["Resources"]["MetricsTable"]["Properties"]
    ddb = emulator.client("dynamodb", region)
    ttl = props["TimeToLiveSpecification"]
    current = ddb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]["TimeToLiveStatus"]
    if ttl["Enabled"] and current != "ENABLED":
        ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    if props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]:
        ddb.update_continuous_backups(TableName=table_name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


def deploy_all(emulator: Emulator, stage: str, regions: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {region: deploy_regional_stack(emulator, region, stage) for region in regions}


def clean_env() -> dict[str, str]:
    """This process's environment without AWS settings that would point boto3 at a real account."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

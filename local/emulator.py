"""moto's server (every region in one process) and the project's CloudFormation templates in it."""
from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from chalicelib import clients, global_endpoint, names
from local import lifeline
from ops.stacks import deploy_stack, stack_outputs
from ops.templates import REGIONAL_TEMPLATE, ROOT, load_template, parameter_values, resolve

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# Read by local.moto_server: after this many records a table's stream shard closes and a child opens.
SHARD_RECORDS_ENV = "LOCAL_STREAM_SHARD_RECORDS"
EMULATOR_CREDENTIALS = {name.lower(): value for name, value in CREDENTIALS.items()}  # as boto3.client takes them


@dataclass
class Emulator:
    """A running moto server process (local.moto_server: moto's, with TransactWriteItems repaired)."""

    endpoint: str
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, port: int, log_path: Path | None = None, shard_records: int | None = None) -> Emulator:
        """moto's server on `port`, a child that dies with this process (local.lifeline); with
        `shard_records`, each table's stream shard closes after that many records and a child shard
        opens (local.moto_server)."""
        log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        env = lifeline.child_env(os.environ)
        if shard_records is not None:
            env[SHARD_RECORDS_ENV] = str(shard_records)
        process = subprocess.Popen(
            lifeline.command("local.moto_server", "-H", "127.0.0.1", "-p", str(port)),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env=env,
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
        """A client of any service of the emulator, with the operator profile (chalicelib.clients),
        for the tests; the local stack uses the typed ones below."""
        return clients.client(service, region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def cloudformation(self, region: str) -> CloudFormationClient:
        return clients.cloudformation(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def cloudwatch(self, region: str) -> CloudWatchClient:
        return clients.cloudwatch(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def dynamodb(self, region: str) -> DynamoDBClient:
        return clients.dynamodb(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def sns(self, region: str) -> SNSClient:
        return clients.sns(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def route53(self) -> Route53Client:
        return clients.route53("operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def secretsmanager(self, region: str) -> SecretsManagerClient:
        return clients.secretsmanager(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)

    def sqs(self, region: str) -> SQSClient:
        return clients.sqs(region, "operator", self.endpoint, **EMULATOR_CREDENTIALS)


def deploy_regional_stack(emulator: Emulator, region: str, stage: str) -> dict[str, str]:
    """Create (or keep) the regional stack in one region and return its outputs.

    moto's CloudFormation creates the table and topic but silently skips a few table properties;
    those are applied here through the DynamoDB API, from the same template, so the emulated table
    is configured as the template says.
    """
    cfn = emulator.cloudformation(region)
    name = names.stack(stage, "regional")
    deploy_stack(cfn, region, name, REGIONAL_TEMPLATE, {"Stage": stage}, delay=1, max_attempts=60)
    outputs = stack_outputs(cfn, name)
    _apply_skipped_table_properties(emulator, region, outputs["TableName"])
    _apply_skipped_secrets(emulator, region, stage)
    return outputs


def _apply_skipped_table_properties(emulator: Emulator, region: str, table_name: str) -> None:
    props = load_template(REGIONAL_TEMPLATE)["Resources"]["MetricsTable"]["Properties"]
    ddb = emulator.dynamodb(region)
    ttl = props["TimeToLiveSpecification"]
    current = ddb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]["TimeToLiveStatus"]
    if ttl["Enabled"] and current != "ENABLED":
        ddb.update_time_to_live(TableName=table_name, TimeToLiveSpecification={
            "AttributeName": ttl["AttributeName"], "Enabled": True})
    if props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]:
        ddb.update_continuous_backups(TableName=table_name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})


def _apply_skipped_secrets(emulator: Emulator, region: str, stage: str) -> None:
    """moto's CloudFormation skips AWS::SecretsManager::Secret: create each secret of the template
    here, with its name and a value generated as its GenerateSecretString asks. A secret that exists
    keeps its value, as a stack update would."""
    template = load_template(REGIONAL_TEMPLATE)
    scope = parameter_values(template, {"Stage": stage}, region)
    sm = emulator.secretsmanager(region)
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::SecretsManager::Secret":
            continue
        props = resolve(resource["Properties"], scope)
        generate = props["GenerateSecretString"]
        value = sm.get_random_password(PasswordLength=generate["PasswordLength"],
                                       ExcludePunctuation=generate.get("ExcludePunctuation", False))["RandomPassword"]
        try:
            sm.create_secret(Name=props["Name"], Description=props.get("Description", ""), SecretString=value,
                             Tags=props.get("Tags", []))
        except sm.exceptions.ResourceExistsException:
            pass


def local_rest_api_id(region: str) -> str:
    """The stand-in for the id of the app's REST API in a region: `chalice local` has none."""
    return "local" + region.replace("-", "")


def apply_global_endpoint(emulator: Emulator, region: str, stage: str, zone_id: str, domain: str,
                          primary_region: str) -> str:
    """The global endpoint's health check and failover record for one region, as dr/regional.yaml
    declares them with HostedZoneId, DomainName and RestApiId set. moto's CloudFormation cannot
    deploy them (it has no ACM certificate or API Gateway domain name, whose RegionalDomainName the
    record names), so they are created here from the template's own properties. Returns the health
    check's id; running it again changes nothing."""
    template = load_template(REGIONAL_TEMPLATE)
    params = {"Stage": stage, "HostedZoneId": zone_id, "DomainName": domain, "RestApiId": local_rest_api_id(region),
              "PrimaryRegion": primary_region}
    scope = parameter_values(template, params, region)
    resources = template["Resources"]
    check = resolve(resources["ApiHealthCheck"]["Properties"], scope)
    route53 = emulator.route53()
    existing = global_endpoint.health_checks(route53, stage).get(region)
    if existing is not None:
        created = existing.id
    else:
        created = route53.create_health_check(CallerReference=f"{stage}-{region}-{domain}",
                                              HealthCheckConfig=check["HealthCheckConfig"])["HealthCheck"]["Id"]
        route53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=created,
                                         AddTags=check["HealthCheckTags"])
    record = dict(resources["ApiFailoverRecord"]["Properties"])
    record.pop("ResourceRecords"), record.pop("Failover"), record.pop("HealthCheckId")  # GetAtt, If and a Ref
    record = resolve(record, scope)
    record.pop("HostedZoneId")
    record.update(TTL=int(record["TTL"]), HealthCheckId=created, Failover="PRIMARY" if region == primary_region
                  else "SECONDARY", ResourceRecords=[{"Value": f"d-{local_rest_api_id(region)}.execute-api.{region}."
                                                               f"{scope['AWS::URLSuffix']}"}])
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]})
    return str(created)


def deploy_all(emulator: Emulator, stage: str, regions: tuple[str, ...]) -> dict[str, dict[str, str]]:
    return {region: deploy_regional_stack(emulator, region, stage) for region in regions}


def clean_env() -> dict[str, str]:
    """This process's environment without AWS settings that would point boto3 at a real account."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

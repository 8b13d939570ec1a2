"""Every boto3 client the service and its tools make, from one of four named profiles.

A profile is a retry policy and timeouts chosen for who waits on the call:
  api       the API's own region: botocore's standard retries (throttling, 5xx, dropped
            connections), short connect and read timeouts;
  peer      the other region's table, read for fencing and written by replication: it may be the
            region that is down, so two attempts of one second each;
  health    the scheduled health check: a table that hangs is the finding, and the run must end
            well inside its Lambda timeout;
  operator  the dr, dashboards and pipeline commands: fail fast on an unreachable region, wait out
            a slow CloudFormation or Scan answer.
The endpoint is AWS's unless `endpoint_url` is given; boto3 also reads AWS_ENDPOINT_URL, which is
how the local stack points the app at the emulator.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, cast

import boto3
from botocore.config import Config

from chalicelib import constants as C

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_codecommit import CodeCommitClient
    from mypy_boto3_codepipeline import CodePipelineClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

Profile = Literal["api", "peer", "health", "operator"]


def _config(attempts: int, connect: float, read: float) -> Config:
    return Config(retries={"mode": "standard", "max_attempts": attempts}, connect_timeout=connect,
                  read_timeout=read)


PROFILES: dict[Profile, Config] = {
    "api": _config(C.AWS_MAX_ATTEMPTS, C.AWS_CONNECT_TIMEOUT_SECONDS, C.AWS_READ_TIMEOUT_SECONDS),
    "peer": _config(C.PEER_MAX_ATTEMPTS, C.PEER_TIMEOUT_SECONDS, C.PEER_TIMEOUT_SECONDS),
    "health": _config(C.HEALTH_AWS_MAX_ATTEMPTS, C.HEALTH_AWS_TIMEOUT_SECONDS, C.HEALTH_AWS_TIMEOUT_SECONDS),
    "operator": _config(C.OPERATOR_MAX_ATTEMPTS, C.OPERATOR_CONNECT_TIMEOUT_SECONDS, C.OPERATOR_READ_TIMEOUT_SECONDS),
}


def client(service: str, region: str, profile: Profile, endpoint_url: str | None = None,
           **credentials: str) -> Any:
    """A client of `service` in `region` with the profile's retries and timeouts. `credentials`
    (aws_access_key_id, ...) are for an emulator; in AWS they come from the function's role."""
    return boto3.client(service, region_name=region, endpoint_url=endpoint_url,
                        config=PROFILES[profile], **credentials)


# Typed shorthands: what the callers use, so that mypy knows each client's methods.

def dynamodb(region: str, profile: Profile, endpoint_url: str | None = None, **credentials: str) -> DynamoDBClient:
    return cast("DynamoDBClient", client("dynamodb", region, profile, endpoint_url, **credentials))


def dynamodbstreams(region: str, profile: Profile, endpoint_url: str | None = None,
                    **credentials: str) -> DynamoDBStreamsClient:
    return cast("DynamoDBStreamsClient", client("dynamodbstreams", region, profile, endpoint_url, **credentials))


def sns(region: str, profile: Profile, endpoint_url: str | None = None, **credentials: str) -> SNSClient:
    return cast("SNSClient", client("sns", region, profile, endpoint_url, **credentials))


def sqs(region: str, profile: Profile, endpoint_url: str | None = None, **credentials: str) -> SQSClient:
    return cast("SQSClient", client("sqs", region, profile, endpoint_url, **credentials))


def cloudwatch(region: str, profile: Profile, endpoint_url: str | None = None,
               **credentials: str) -> CloudWatchClient:
    return cast("CloudWatchClient", client("cloudwatch", region, profile, endpoint_url, **credentials))


def apigateway(region: str, profile: Profile, endpoint_url: str | None = None,
               **credentials: str) -> APIGatewayClient:
    return cast("APIGatewayClient", client("apigateway", region, profile, endpoint_url, **credentials))


def cloudformation(region: str, profile: Profile, endpoint_url: str | None = None,
                   **credentials: str) -> CloudFormationClient:
    return cast("CloudFormationClient", client("cloudformation", region, profile, endpoint_url, **credentials))


def lambda_(region: str, profile: Profile, endpoint_url: str | None = None, **credentials: str) -> LambdaClient:
    return cast("LambdaClient", client("lambda", region, profile, endpoint_url, **credentials))


def codepipeline(region: str, profile: Profile, endpoint_url: str | None = None,
                 **credentials: str) -> CodePipelineClient:
    return cast("CodePipelineClient", client("codepipeline", region, profile, endpoint_url, **credentials))


def codecommit(region: str, profile: Profile, endpoint_url: str | None = None,
               **credentials: str) -> CodeCommitClient:
    return cast("CodeCommitClient", client("codecommit", region, profile, endpoint_url, **credentials))


def secretsmanager(region: str, profile: Profile, endpoint_url: str | None = None,
                   **credentials: str) -> SecretsManagerClient:
    return cast("SecretsManagerClient", client("secretsmanager", region, profile, endpoint_url, **credentials))


def route53(profile: Profile, endpoint_url: str | None = None, **credentials: str) -> Route53Client:
    """Route 53 is global: its API lives in us-east-1."""
    return cast("Route53Client", client("route53", C.PRIMARY_REGION, profile, endpoint_url, **credentials))

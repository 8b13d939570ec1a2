"""Both regions of one stage, as the operator's tools reach them."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chalicelib import clients, names
from chalicelib import constants as C
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.config import Settings
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.events import EventStore
from ops.stacks import stack_outputs

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient


@dataclass
class Regions:
    """One stage's tables, stacks and topics in the primary and the DR region. `endpoint_url` (or
    AWS_ENDPOINT_URL) points every client at an AWS emulator instead of AWS."""

    stage: str
    endpoint_url: str | None = None
    _tables: dict[str, Table] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")

    @property
    def table_name(self) -> str:
        return names.table(self.stage)

    @staticmethod
    def peer(region: str) -> str:
        return names.peer_region(region)

    def table(self, region: str) -> Table:
        if region not in self._tables:
            client = clients.dynamodb(region, "operator", self.endpoint_url)
            self._tables[region] = Table(client, self.table_name, region)
        return self._tables[region]

    def control(self, region: str) -> ControlStore:
        return ControlStore(self.table(region))

    def events(self, region: str) -> EventStore:
        return EventStore(self.table(region))

    def settings(self, region: str) -> Settings:
        return Settings(stage=self.stage, region=region, primary_region=C.PRIMARY_REGION, dr_region=C.DR_REGION,
                        table_name=self.table_name, alert_topic_arn=self.topic_arn(region), version="")

    def cloudformation(self, region: str) -> CloudFormationClient:
        return clients.cloudformation(region, "operator", self.endpoint_url)

    def cloudwatch(self, region: str) -> CloudWatchClient:
        return clients.cloudwatch(region, "operator", self.endpoint_url)

    def sns(self, region: str) -> SNSClient:
        return clients.sns(region, "operator", self.endpoint_url)

    def lambda_(self, region: str) -> LambdaClient:
        return clients.lambda_(region, "operator", self.endpoint_url)

    def route53(self) -> Route53Client:
        return clients.route53("operator", self.endpoint_url)

    def secretsmanager(self, region: str) -> SecretsManagerClient:
        return clients.secretsmanager(region, "operator", self.endpoint_url)

    def regional_outputs(self, region: str) -> dict[str, str]:
        """The regional stack's outputs (TableName, TableStreamArn, AlertTopicArn)."""
        return stack_outputs(self.cloudformation(region), names.stack(self.stage, "regional"))

    def topic_arn(self, region: str) -> str | None:
        """The alert topic from the regional stack's outputs (None when the stack cannot be read)."""
        try:
            return self.regional_outputs(region).get("AlertTopicArn")
        except AWS_ERRORS:  # no stack, no permission, region down: no topic to notify
            return None

"""Both regions' tables and topics for one stage, as the operator's tools see them."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from chalicelib import constants as C
from chalicelib.config import Settings
from chalicelib.store import MetricsStore

PRIMARY_REGION = "us-east-1"
DR_REGION = "us-west-2"
REGIONS = (PRIMARY_REGION, DR_REGION)
# Operator commands fail fast on an unreachable region instead of retrying for minutes.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=10)


@dataclass
class Regions:
    stage: str
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        self.endpoint_url = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self._stores: dict[str, MetricsStore] = {}

    @property
    def table_name(self) -> str:
        return C.TABLE_NAME_PREFIX + self.stage

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint_url, config=_CONFIG)

    def store(self, region: str) -> MetricsStore:
        if region not in self._stores:
            self._stores[region] = MetricsStore(self.client("dynamodb", region), self.table_name, region)
        return self._stores[region]

    def settings(self, region: str) -> Settings:
        return Settings(stage=self.stage, region=region, primary_region=PRIMARY_REGION, dr_region=DR_REGION,
                        table_name=self.table_name, alert_topic_arn=self.topic_arn(region), version="")

    def peer(self, region: str) -> str:
        return DR_REGION if region == PRIMARY_REGION else PRIMARY_REGION

    def topic_arn(self, region: str) -> str | None:
        """The alert topic from the regional stack's outputs (None when the stack cannot be read)."""
        try:
            stack = self.client("cloudformation", region).describe_stacks(
                StackName=f"devops-metrics-{self.stage}")["Stacks"][0]
        except Exception:  # noqa: BLE001 - no stack, no permission, region down: no topic to notify
            return None
        return next((o["OutputValue"] for o in stack.get("Outputs", []) if o["OutputKey"] == "AlertTopicArn"), None)

"""Run-time settings, read from the environment Chalice sets per stage (.chalice/config.json)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib import __version__
from chalicelib.constants import TABLE_NAME_PREFIX


@dataclass(frozen=True)
class Settings:
    stage: str  # the deployment stage the table is named after ("prod" for both prod and prod-dr)
    region: str  # the region this copy of the app runs in
    primary_region: str  # active region when no failover has been recorded
    dr_region: str
    table_name: str
    alert_topic_arn: str | None
    version: str
    health_check_url: str | None = None  # the API's base URL the scheduled health check probes
    dora_environments: tuple[str, ...] = ("production",)  # whose four keys are published as metrics

    @property
    def peer_region(self) -> str:
        return self.dr_region if self.region == self.primary_region else self.primary_region

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = env.get("APP_STAGE", "dev")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(
            stage=stage,
            region=region,
            primary_region=env.get("PRIMARY_REGION", "us-east-1"),
            dr_region=env.get("DR_REGION", "us-west-2"),
            table_name=env.get("TABLE_NAME", TABLE_NAME_PREFIX + stage),
            alert_topic_arn=env.get("ALERT_TOPIC_ARN") or None,
            version=__version__,
            health_check_url=env.get("HEALTH_CHECK_URL") or None,
            dora_environments=tuple(e.strip() for e in env.get("DORA_ENVIRONMENTS", "production").split(",")
                                    if e.strip()),
        )

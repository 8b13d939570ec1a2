"""Run-time settings, read from the environment Chalice sets per stage (.chalice/config.json)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib import __version__, names
from chalicelib import constants as C


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
    dora_environments: tuple[str, ...] = ("production",)  # whose DORA metrics are published to CloudWatch
    lease_seconds: float = C.LEASE_SECONDS  # the write lease (chalicelib.lease)

    @property
    def peer_region(self) -> str:
        return names.peer_region(self.region, self.primary_region, self.dr_region)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = current_stage(env)
        return cls(
            stage=stage,
            region=current_region(env),
            primary_region=env.get(C.ENV_PRIMARY_REGION, C.PRIMARY_REGION),
            dr_region=env.get(C.ENV_DR_REGION, C.DR_REGION),
            table_name=env.get(C.ENV_TABLE_NAME, names.table(stage)),
            alert_topic_arn=env.get(C.ENV_ALERT_TOPIC_ARN) or None,
            version=__version__,
            health_check_url=env.get(C.ENV_HEALTH_CHECK_URL) or None,
            lease_seconds=float(env.get(C.ENV_LEASE_SECONDS) or C.LEASE_SECONDS),
            dora_environments=tuple(e.strip() for e in env.get(C.ENV_DORA_ENVIRONMENTS, C.DEFAULT_ENVIRONMENT)
                                    .split(",") if e.strip()),
        )


def current_stage(env: Mapping[str, str] | None = None) -> str:
    """The table stage this function serves (APP_STAGE, set per Chalice stage)."""
    return (os.environ if env is None else env).get(C.ENV_STAGE, C.DEFAULT_STAGE)


def current_region(env: Mapping[str, str] | None = None) -> str:
    """The region this function runs in (Lambda sets AWS_REGION)."""
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or C.PRIMARY_REGION

"""Every name the service gives a thing in AWS, and which region is whose peer.

The table stage (dev, prod) names the table, the topic and the stacks, which are the same in both
regions; the Chalice stage (dev and dev-dr, prod and prod-dr) names what Chalice deploys in each
region: the API, the functions, the dashboards and the alarms.
"""
from __future__ import annotations

from typing import Literal

from chalicelib import constants as C

APP_NAME = C.APP_NAME  # also API Gateway's ApiName
DR_SUFFIX = "-dr"  # the Chalice stage of a table stage's standby: <stage>-dr


def peer_region(region: str, primary: str = C.PRIMARY_REGION, dr: str = C.DR_REGION) -> str:
    """The other region of the pair."""
    return dr if region == primary else primary


def chalice_stage(stage: str, region: str, primary: str = C.PRIMARY_REGION) -> str:
    """The Chalice stage deployed in `region` for table stage `stage`."""
    return stage if region == primary else stage + DR_SUFFIX


def chalice_stages(stage: str) -> dict[str, str]:
    """Region -> the Chalice stage deployed there."""
    return {region: chalice_stage(stage, region) for region in C.REGIONS}


def table(stage: str) -> str:
    return f"{APP_NAME}-{stage}"


# The CloudFormation stacks of a table stage, by what they hold:
#   regional             dr/regional.yaml: the table and the alert topic, in each region (named as the table)
#   monitoring           dashboards/alarms.yaml, in each region
#   pipeline             pipeline/pipeline.yaml, in the primary region
#   pipeline-artifacts   pipeline/artifacts.yaml: the artifact store, in each region
Stack = Literal["regional", "monitoring", "pipeline", "pipeline-artifacts"]


def stack(stage: str, holds: Stack) -> str:
    return table(stage) if holds == "regional" else f"{APP_NAME}-{stage}-{holds}"


def app_stack(stage: str, region: str) -> str:
    """The stack the pipeline deploys the app into in `region`: <app>-<chalice stage>-app."""
    return f"{APP_NAME}-{chalice_stage(stage, region)}-app"


def webhook_secret(stage: str, source: str) -> str:
    """The Secrets Manager secret a webhook source signs with, the same name in both regions."""
    return f"{APP_NAME}-{stage}-webhook-{source}"


def alert_topic(stage: str) -> str:
    return f"{APP_NAME}-{stage}-alerts"


def alert_topic_arn(region: str, account: str, stage: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{alert_topic(stage)}"


def api_function(chalice_stage: str) -> str:
    """The API handler's Lambda function."""
    return f"{APP_NAME}-{chalice_stage}"


def function(chalice_stage: str, name: str) -> str:
    """One of the app's other Lambda functions (C.APP_FUNCTIONS)."""
    return f"{APP_NAME}-{chalice_stage}-{name}"


def functions(chalice_stage: str) -> tuple[str, ...]:
    """Every Lambda function of one Chalice stage, the API handler first."""
    return (api_function(chalice_stage), *(function(chalice_stage, name) for name in C.APP_FUNCTIONS))


def dashboard(chalice_stage: str, topic: str) -> str:
    return f"{APP_NAME}-{chalice_stage}-{topic}"


def alarm(chalice_stage: str, what: str) -> str:
    return f"{APP_NAME}-{chalice_stage}-{what}"


def pipeline(stage: str) -> str:
    """The CodePipeline pipeline and its CodeCommit repository."""
    return f"{APP_NAME}-{stage}"


def build_project(stage: str) -> str:
    return f"{APP_NAME}-{stage}-build"


def smoke_project(stage: str) -> str:
    return f"{APP_NAME}-{stage}-smoke"

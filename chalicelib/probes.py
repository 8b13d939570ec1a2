"""What the scheduled health check reaches outside the table: the API over HTTP, Lambda, and the
alert topic. Handed in as `Probes`, so the check runs against fakes of the outside in tests and
against AWS (or the emulator) when deployed."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import clients, names
from chalicelib import constants as C
from chalicelib.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sns import SNSClient


class LambdaContext(Protocol):
    """The part of Lambda's context object the health check reads."""

    function_name: str
    invoked_function_arn: str


@dataclass(frozen=True)
class Probes:
    api_url: str | None
    http_get: Callable[[str, float], tuple[int, dict[str, Any]]]
    lambda_client: Callable[[], LambdaClient]
    function_names: tuple[str, ...]
    publish: Callable[[str, str], None]  # (subject, message) -> the alert topic


def http_get_json(url: str, timeout: float) -> tuple[int, dict[str, Any]]:
    import requests  # only the health check function needs it

    response = requests.get(url, timeout=timeout)
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body if isinstance(body, dict) else {}


def function_names(own_name: str | None) -> tuple[str, ...]:
    """This app's Lambda functions in this region, named after the health check's own name
    (<app>-<chalice stage>-health_check). Empty outside Lambda."""
    start, end = names.APP_NAME + "-", "-" + C.HEALTH_CHECK_FUNCTION
    if not own_name or not own_name.startswith(start) or not own_name.endswith(end):
        return ()
    return names.functions(own_name[len(start):-len(end)])


def alert_topic_arn(settings: Settings, invoked_function_arn: str | None) -> str | None:
    """ALERT_TOPIC_ARN when set; else the regional stack's topic in this function's account."""
    if settings.alert_topic_arn:
        return settings.alert_topic_arn
    if not invoked_function_arn or invoked_function_arn.count(":") < 5:
        return None
    return names.alert_topic_arn(settings.region, invoked_function_arn.split(":")[4], settings.stage)


def aws_probes(settings: Settings, lambda_context: LambdaContext | None) -> Probes:
    """The probes of a deployed (or locally run) health check, with the health profile's clients,
    each made when first used."""
    topic = alert_topic_arn(settings, getattr(lambda_context, "invoked_function_arn", None))
    sns: list[SNSClient] = []

    def publish(subject: str, message: str) -> None:
        if topic is None:
            raise RuntimeError("no alert topic: set ALERT_TOPIC_ARN or run in Lambda")
        if not sns:
            sns.append(clients.sns(settings.region, "health"))
        sns[0].publish(TopicArn=topic, Subject=subject, Message=message)

    lambdas: list[LambdaClient] = []

    def lambda_client() -> LambdaClient:
        if not lambdas:
            lambdas.append(clients.lambda_(settings.region, "health"))
        return lambdas[0]

    return Probes(api_url=settings.health_check_url, http_get=http_get_json, lambda_client=lambda_client,
                  function_names=function_names(getattr(lambda_context, "function_name", None)), publish=publish)

"""The alarms moto's CloudFormation skips, created through the CloudWatch API instead.

moto 5.2.5 accepts a stack of `AWS::CloudWatch::Alarm` resources and silently creates none of them.
`python -m dashboards deploy` stays AWS-real (it only deploys the stack), so on the emulator the
alarms are put here, from the same template and the stack's own parameters: each alarm's resolved
properties are PutMetricAlarm's arguments, name for name.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib import names
from dashboards.template import resolved_alarms
from local.emulator import Emulator
from ops.stacks import stack_parameters
from ops.templates import ALARMS_TEMPLATE, load_template

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


# Properties of AWS::CloudWatch::Alarm that are not PutMetricAlarm arguments of the same name.
_NOT_API_ARGUMENTS = frozenset({"Tags"})


def put_alarm_arguments(properties: Mapping[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm's arguments from an alarm's resolved properties (they map 1:1)."""
    arguments = {k: v for k, v in properties.items() if k not in _NOT_API_ARGUMENTS}
    for number in ("Threshold",):
        if number in arguments:
            arguments[number] = float(arguments[number])
    for integer in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if integer in arguments:
            arguments[integer] = int(arguments[integer])
    return arguments


def apply_skipped_alarms(cloudwatch: CloudWatchClient, parameters: Mapping[str, str], region: str,
                         template: Path | Mapping[str, Any] = ALARMS_TEMPLATE) -> list[str]:
    """Put every alarm of `template`, resolved with `parameters`, through `cloudwatch` (a boto3
    CloudWatch client of `region`). Idempotent: PutMetricAlarm replaces an alarm of the same name.
    Returns the alarm names."""
    loaded = load_template(template) if isinstance(template, Path) else template
    names = []
    for properties in resolved_alarms(parameters, region, loaded).values():
        cloudwatch.put_metric_alarm(**put_alarm_arguments(properties))
        names.append(str(properties["AlarmName"]))
    return names


def apply_monitoring_stack_alarms(emulator: Emulator, region: str, stage: str,
                                  template: Path = ALARMS_TEMPLATE) -> list[str]:
    """After `python -m dashboards deploy` against the emulator: the alarms of the region's stack
    devops-metrics-<stage>-monitoring, with the parameters that stack was deployed with."""
    parameters = stack_parameters(emulator.cloudformation(region), names.stack(stage, "monitoring"))
    return apply_skipped_alarms(emulator.cloudwatch(region), parameters, region, template)

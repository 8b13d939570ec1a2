"""The alarms template with its Ref and Sub resolved: what CloudFormation would pass to
PutMetricAlarm for each alarm. Used to list the metrics the alarms reference, and by the local stack
to create the alarms moto's CloudFormation skips. The template uses only Ref and Sub (ops.templates
resolves those)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ops.templates import ALARMS_TEMPLATE, load_template, parameter_values, resolve

__all__ = ["ALARMS_TEMPLATE", "ALARM_TYPE", "load", "resolved_alarms"]

ALARM_TYPE = "AWS::CloudWatch::Alarm"


def load(path: Path = ALARMS_TEMPLATE) -> dict[str, Any]:
    return load_template(path)


def resolved_alarms(parameters: Mapping[str, str], region: str, template: Mapping[str, Any] | None = None,
                    account_id: str = "123456789012") -> dict[str, dict[str, Any]]:
    """Logical id -> the alarm's resolved properties, for every AWS::CloudWatch::Alarm."""
    template = template if template is not None else load()
    values = parameter_values(template, parameters, region, account_id)
    return {logical_id: resolve(resource.get("Properties", {}), values)
            for logical_id, resource in template["Resources"].items() if resource["Type"] == ALARM_TYPE}

"""The alarms template as data, with its Ref and Sub resolved: what CloudFormation would pass to
PutMetricAlarm. Used to list the metrics the alarms reference, and by the local stack to create the
alarms moto's CloudFormation skips. The template uses only Ref and Sub, so that is all this knows."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.emulator import load_template

ALARMS_TEMPLATE = Path(__file__).resolve().parent / "alarms.yaml"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class UnresolvedError(ValueError):
    """The template uses an intrinsic function or a name this resolver does not know."""


def load(path: Path = ALARMS_TEMPLATE) -> dict[str, Any]:
    """The alarms template as data; short-form intrinsics become {"Fn::<name>": ...} (so `!Ref X` is
    {"Fn::Ref": "X"}), as local.emulator.load_template makes them for every template."""
    return load_template(path)


def pseudo_parameters(region: str, account_id: str = "123456789012") -> dict[str, str]:
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    return {"AWS::Region": region, "AWS::AccountId": account_id, "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"}


def resolve(node: Any, names: Mapping[str, Any]) -> Any:
    """`node` with every Ref and Sub replaced from `names` (parameters and pseudo parameters)."""
    if isinstance(node, list):
        return [resolve(item, names) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (key, value), = node.items()
        if key in ("Ref", "Fn::Ref"):
            if value not in names:
                raise UnresolvedError(f"Ref to {value!r}, which is not a parameter")
            return names[value]
        if key == "Fn::Sub":
            text, extra = (value[0], value[1]) if isinstance(value, list) else (value, {})
            scope = {**names, **{k: resolve(v, names) for k, v in extra.items()}}
            return _SUB_VARIABLE.sub(lambda m: _sub_value(m.group(1), scope), text)
        if key.startswith("Fn::") or key == "Condition":
            raise UnresolvedError(f"{key} is not supported here: use only Ref and Sub in this template")
    return {key: resolve(value, names) for key, value in node.items()}


def _sub_value(name: str, scope: Mapping[str, Any]) -> str:
    if name not in scope:
        raise UnresolvedError(f"${{{name}}} in a Sub, which is not a parameter")
    return str(scope[name])


def names_for(template: Mapping[str, Any], parameters: Mapping[str, str], region: str,
              account_id: str = "123456789012") -> dict[str, Any]:
    """Parameter values as CloudFormation would see them: given, else the default, typed as declared."""
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = set(parameters) - set(declared)
    if unknown:
        raise UnresolvedError(f"parameters not in the template: {sorted(unknown)}")
    names: dict[str, Any] = pseudo_parameters(region, account_id)
    for name, spec in declared.items():
        if name in parameters:
            value: Any = parameters[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise UnresolvedError(f"parameter {name} has no value and no default")
        names[name] = _number(value) if spec.get("Type") == "Number" else value
    return names


def _number(value: Any) -> float | int:
    number = float(value)
    return int(number) if number.is_integer() else number


def resolved_alarms(parameters: Mapping[str, str], region: str, template: Mapping[str, Any] | None = None,
                    account_id: str = "123456789012") -> dict[str, dict[str, Any]]:
    """Logical id -> the alarm's resolved properties, for every AWS::CloudWatch::Alarm."""
    template = template if template is not None else load()
    names = names_for(template, parameters, region, account_id)
    return {logical_id: resolve(resource.get("Properties", {}), names)
            for logical_id, resource in template["Resources"].items() if resource["Type"] == ALARM_TYPE}

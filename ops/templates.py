"""The project's CloudFormation templates as data, and their Ref and Sub resolved.

`load_template` reads a YAML template with its short-form intrinsics (!Ref, !Sub, !GetAtt...) kept
as {"Fn::<name>": ...}. `resolve` replaces Ref and Sub from parameter values, which is all a
template made only of those (dashboards/alarms.yaml) needs to become what CloudFormation would pass
to the service's API.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent  # the repository
REGIONAL_TEMPLATE = ROOT / "dr" / "regional.yaml"
ALARMS_TEMPLATE = ROOT / "dashboards" / "alarms.yaml"
PIPELINE_TEMPLATE = ROOT / "pipeline" / "pipeline.yaml"
ARTIFACTS_TEMPLATE = ROOT / "pipeline" / "artifacts.yaml"

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


class UnresolvedError(ValueError):
    """The template uses an intrinsic function or a name this resolver does not know."""


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML template as data (a JSON-shaped dict)."""
    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return {f"Fn::{suffix}": loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {f"Fn::{suffix}": loader.construct_sequence(node, deep=True)}
        return {f"Fn::{suffix}": loader.construct_mapping(node, deep=True)}

    Loader.add_multi_constructor("!", intrinsic)
    with open(path) as handle:
        loaded: dict[str, Any] = yaml.load(handle, Loader=Loader)  # noqa: S506 - SafeLoader subclass
    return loaded


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


def parameter_values(template: Mapping[str, Any], parameters: Mapping[str, str], region: str,
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

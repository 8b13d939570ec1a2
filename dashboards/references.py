"""Every metric the dashboards and the alarms reference, as (namespace, name, dimensions), so that a
test can prove each one is a metric the code emits (docs/monitoring.md)."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from chalicelib import names
from dashboards import bodies as B
from dashboards import template as T

STAGES_FILE = Path(__file__).resolve().parent / "stages.json"
# A placeholder account for the topic: the alarms' metrics do not depend on it.
_PLACEHOLDER_ACCOUNT = "123456789012"

Dimensions = frozenset[tuple[str, str | None]]
MetricRef = tuple[str, str, Dimensions]  # (namespace, metric name, {(dimension, value or None)})

# SEARCH('{Namespace,Dim1,Dim2} MetricName="X" Dim1="v"', 'Stat', period)
_SEARCH = re.compile(r"SEARCH\(\s*'(?P<query>[^']*)'")
_SCHEMA = re.compile(r"\{(?P<schema>[^}]*)\}")
_TERM = re.compile(r'(?P<key>[A-Za-z0-9_.:/-]+)\s*=\s*"(?P<value>[^"]*)"')


def load_stages(path: Path = STAGES_FILE) -> dict[str, Any]:
    stages: dict[str, Any] = json.loads(path.read_text())
    return stages


def alarm_parameters(stage: str, chalice_stage: str, topic_arn: str, stages: Mapping[str, Any]) -> dict[str, str]:
    """The monitoring stack's parameters: names, the topic, and the stage's thresholds."""
    thresholds = stages[stage]["thresholds"]
    return {"Stage": stage, "ChaliceStage": chalice_stage, "AlertTopicArn": topic_arn,
            **{name: str(value) for name, value in thresholds.items()}}


def dashboard_metrics(body: Mapping[str, Any]) -> Iterator[MetricRef]:
    """The metrics of one dashboard body: explicit metric lines and SEARCH expressions."""
    for widget in body.get("widgets", []):
        for line in widget.get("properties", {}).get("metrics", []):
            fields = [f for f in line if not isinstance(f, dict)]
            options = next((f for f in line if isinstance(f, dict)), {})
            if fields:
                if len(fields) % 2 or "." in fields:
                    raise ValueError(f"write metric lines out in full, without '.': {line}")
                namespace, name, *pairs = fields
                yield namespace, name, frozenset(zip(pairs[::2], pairs[1::2], strict=True))
            elif "expression" in options:
                yield from search_metrics(options["expression"])


def search_metrics(expression: str) -> Iterator[MetricRef]:
    """What a SEARCH expression can match: its schema's namespace and dimension names, the MetricName
    it names, and the dimension values it fixes (None where it does not). Plain math yields nothing."""
    for found in _SEARCH.finditer(expression):
        query = found.group("query")
        schema = _SCHEMA.search(query)
        if schema is None:
            raise ValueError(f"SEARCH without a {{namespace,dimensions}} schema: {expression}")
        namespace, *names = [part.strip() for part in schema.group("schema").split(",")]
        terms = {m.group("key"): m.group("value") for m in _TERM.finditer(query[schema.end():])}
        if "MetricName" not in terms:
            raise ValueError(f"SEARCH without a MetricName: {expression}")
        yield namespace.strip('"'), terms["MetricName"], frozenset((n, terms.get(n)) for n in names)


def alarm_metrics(alarms: Mapping[str, Mapping[str, Any]]) -> Iterator[MetricRef]:
    """The metrics of resolved alarm properties: a single metric, or each MetricStat of a math alarm."""
    def ref(spec: Mapping[str, Any]) -> MetricRef:
        dims = frozenset((d["Name"], d["Value"]) for d in spec.get("Dimensions", []))
        return spec["Namespace"], spec["MetricName"], dims

    for props in alarms.values():
        if "MetricName" in props:
            yield ref(props)
        for query in props.get("Metrics", []):
            if "MetricStat" in query:
                yield ref(query["MetricStat"]["Metric"])


def referenced_metrics(stage: str, chalice_stage: str, region: str, peer_region: str,
                       stages_file: Path = STAGES_FILE) -> set[MetricRef]:
    """Every (namespace, metric name, dimensions) the dashboards and the alarms of one region use."""
    refs: set[MetricRef] = set()
    for body in B.bodies(stage, chalice_stage, region, peer_region).values():
        refs.update(dashboard_metrics(body))
    topic = names.alert_topic_arn(region, _PLACEHOLDER_ACCOUNT, stage)
    parameters = alarm_parameters(stage, chalice_stage, topic, load_stages(stages_file))
    refs.update(alarm_metrics(T.resolved_alarms(parameters, region)))
    return refs

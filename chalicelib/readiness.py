"""Readiness: could the DR region take over today? Checked before the bad day, not during it.

The two regions are compared, check by check: the table's schema, indexes, stream, TTL,
point-in-time recovery and deletion protection; the webhook secrets; the alert topic and its
subscriptions; the functions and their configuration; the global endpoint's health checks and
records. Each region must also hold what the template gives it (a stream, TTL, recovery, deletion
protection, every secret, a topic with a confirmed subscription). Then replication's heartbeat must
be fresh in the standby, and a drill (`python -m dr drill`) or a real failover must have finished
within DRILL_MAX_AGE_DAYS.

`python -m dr readiness` prints the findings and exits 1 when there is one; the `readiness_check`
function runs it daily in each region and emits `ReadinessFindings`, which an alarm e-mails.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib import clients, names
from chalicelib import constants as C
from chalicelib import global_endpoint as ge
from chalicelib.aws_errors import AWS_ERRORS, first_line
from chalicelib.checks import age_seconds
from chalicelib.config import Settings
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from chalicelib.role import latest
from chalicelib.times import parse_time

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient

MISSING = "missing"
# Function settings that must match; the environment is compared by its names (values such as the
# health-check URL are the region's own).
FUNCTION_SETTINGS = ("Runtime", "Handler", "MemorySize", "Timeout", "Architectures")
OWN_TO_EACH_REGION = {"failover"}  # facts that differ by design (a record is PRIMARY or SECONDARY)


class Sources(Protocol):
    """What readiness reads, in each region (ops.regions.Regions in the dr command; ClientSources in
    the daily function)."""

    @property
    def stage(self) -> str: ...

    def table(self, region: str) -> Table: ...
    def secretsmanager(self, region: str) -> SecretsManagerClient: ...
    def sns(self, region: str) -> SNSClient: ...
    def lambda_(self, region: str) -> LambdaClient: ...
    def route53(self) -> Route53Client: ...
    def topic_arn(self, region: str) -> str | None: ...


@dataclass
class ClientSources:
    """Both regions as the daily function reads them, with the health check's fast-failing clients."""

    settings: Settings

    @property
    def stage(self) -> str:
        return self.settings.stage

    def table(self, region: str) -> Table:
        return Table(clients.dynamodb(region, "health"), self.settings.table_name, region)

    def secretsmanager(self, region: str) -> SecretsManagerClient:
        return clients.secretsmanager(region, "health")

    def sns(self, region: str) -> SNSClient:
        return clients.sns(region, "health")

    def lambda_(self, region: str) -> LambdaClient:
        return clients.lambda_(region, "health")

    def route53(self) -> Route53Client:
        return clients.route53("health")

    def topic_arn(self, region: str) -> str | None:
        own = self.settings.alert_topic_arn  # the peer's topic has the same name in the same account
        return own.replace(f":{self.settings.region}:", f":{region}:") if own else None


@dataclass(frozen=True)
class Finding:
    check: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "message": self.message}


@dataclass
class ReadinessReport:
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # check -> region -> what was found
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "findings": [f.as_dict() for f in self.findings], "notes": self.notes,
                "facts": self.facts}


def _guarded(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except AWS_ERRORS as error:
        return f"unreadable: {first_line(error)[:160]}"


def _schema(table: Table) -> dict[str, Any]:
    described = table.describe()
    indexes = {index["IndexName"]: {"keys": index["KeySchema"], "projection": index["Projection"]}
               for index in described.get("GlobalSecondaryIndexes", [])}
    stream = described.get("StreamSpecification") or {}
    return {
        "table schema": {"keys": described["KeySchema"],
                         "attributes": sorted(described["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
                         "billing": (described.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")},
        "indexes": indexes,
        "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else "disabled",
        "deletion protection": "enabled" if described.get("DeletionProtectionEnabled") else "disabled",
    }


def _table_facts(table: Table) -> dict[str, Any]:
    try:
        facts = _schema(table)
    except AWS_ERRORS as error:
        unreadable = f"unreadable: {first_line(error)[:160]}"
        return dict.fromkeys(("table schema", "indexes", "stream", "deletion protection", "TTL",
                              "point-in-time recovery"), unreadable)
    ttl = _guarded(table.time_to_live)
    facts["TTL"] = f"{ttl.get('TimeToLiveStatus')} on {ttl.get('AttributeName')}" if isinstance(ttl, dict) else ttl
    facts["point-in-time recovery"] = _guarded(table.point_in_time_recovery)
    return facts


def _secrets(client: SecretsManagerClient, stage: str) -> dict[str, str]:
    found = {}
    for source in C.WEBHOOK_SOURCES:
        try:
            client.describe_secret(SecretId=names.webhook_secret(stage, source))
            found[source] = "present"
        except client.exceptions.ResourceNotFoundException:
            found[source] = MISSING
        except AWS_ERRORS as error:
            found[source] = f"unreadable: {first_line(error)[:120]}"
    return found


def _subscriptions(client: SNSClient, topic: str | None, region: str) -> Any:
    if topic is None:
        return MISSING
    endpoints = []
    for page in client.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        for sub in page["Subscriptions"]:
            pending = sub["SubscriptionArn"] == "PendingConfirmation"
            endpoint = sub["Endpoint"].replace(f":{region}:", ":<region>:")  # a queue or function of the region
            endpoints.append(f"{sub['Protocol']}:{endpoint}" + (" (pending confirmation)" if pending else ""))
    return sorted(endpoints)


def _functions(client: LambdaClient, stage: str, region: str) -> dict[str, Any]:
    chalice_stage = names.chalice_stage(stage, region)
    found: dict[str, Any] = {}
    for name in names.functions(chalice_stage):
        role = name.removeprefix(names.api_function(chalice_stage)).lstrip("-") or "api"
        try:
            config = client.get_function_configuration(FunctionName=name)
        except client.exceptions.ResourceNotFoundException:
            found[role] = MISSING
            continue
        except AWS_ERRORS as error:
            found[role] = f"unreadable: {first_line(error)[:120]}"
            continue
        settings = {key: config.get(key) for key in FUNCTION_SETTINGS}
        settings["environment"] = sorted((config.get("Environment") or {}).get("Variables", {}))
        settings["tracing"] = (config.get("TracingConfig") or {}).get("Mode")
        found[role] = settings
    return found


def _endpoint_facts(endpoint: ge.GlobalEndpoint | None, region: str) -> dict[str, Any]:
    if endpoint is None:
        return {"health check": MISSING, "record": MISSING}
    check, record = endpoint.health_checks.get(region), endpoint.records.get(region)
    return {"health check": MISSING if check is None else {
                "path": check.path, "search": check.search_string, "interval": check.interval,
                "failure threshold": check.failure_threshold},
            "record": MISSING if record is None else {"name": record.name, "type": record.type, "ttl": record.ttl,
                                                     "failover": record.failover}}


def _is_unreadable(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("unreadable:") or (
        isinstance(value, dict) and any(_is_unreadable(v) for v in value.values()))


def _differences(check: str, by_region: Mapping[str, Any]) -> list[Finding]:
    (first, a), (second, b) = by_region.items()
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict) and {k: v for k, v in a.items() if k not in OWN_TO_EACH_REGION} \
            == {k: v for k, v in b.items() if k not in OWN_TO_EACH_REGION}:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [Finding(check, f"{key}: {first} {a.get(key, MISSING)!r}, {second} {b.get(key, MISSING)!r}")
                for key in sorted(set(a) | set(b), key=str)
                if key not in OWN_TO_EACH_REGION and a.get(key, MISSING) != b.get(key, MISSING)]
    return [Finding(check, f"{first} {a!r}, {second} {b!r}")]


REQUIRED = {  # what each region must hold, whatever the other holds (dr/regional.yaml)
    "stream": lambda v: v == "NEW_AND_OLD_IMAGES",
    "deletion protection": lambda v: v == "enabled",
    "TTL": lambda v: v == f"ENABLED on {C.TTL_ATTRIBUTE}",
    "point-in-time recovery": lambda v: v == "ENABLED",
}


def check(sources: Sources, now: datetime) -> ReadinessReport:
    report = ReadinessReport()
    stage = sources.stage
    try:
        endpoint = ge.find(sources.route53(), stage)
    except AWS_ERRORS as error:
        endpoint = None
        report.findings.append(Finding("health checks and records", f"Route 53 unreadable: {first_line(error)}"))
        route53_read = False
    else:
        route53_read = True
    for region in C.REGIONS:
        facts: dict[str, Any] = _table_facts(sources.table(region))
        facts["secrets"] = _secrets(sources.secretsmanager(region), stage)
        topic = _guarded(lambda r=region: sources.topic_arn(r))  # type: ignore[misc]
        arn = topic if isinstance(topic, str) and topic.startswith("arn:") else None
        facts["topic"] = "present" if arn else MISSING
        facts["subscriptions"] = _guarded(lambda r=region, t=arn: _subscriptions(sources.sns(r), t, r))  # type: ignore[misc]
        facts["functions"] = _functions(sources.lambda_(region), stage, region)
        facts.update(_endpoint_facts(endpoint, region))
        for name, value in facts.items():
            report.facts.setdefault(name, {})[region] = value
    unreadable: dict[str, list[str]] = {}
    for by_region in report.facts.values():
        for region, value in by_region.items():
            for item in value.values() if isinstance(value, dict) else [value]:
                if _is_unreadable(item):
                    unreadable.setdefault(region, []).append(str(item))
    for region, errors in unreadable.items():
        report.findings.append(Finding("reachable", f"{region}: {len(errors)} check(s) could not read it "
                                                    f"({errors[0].removeprefix('unreadable: ')})"))
    for name, by_region in report.facts.items():
        if unreadable or any(_is_unreadable(v) for v in by_region.values()):
            continue  # a region that cannot be read is the one finding; its other facts mean nothing
        if name not in ("secrets", "topic"):  # for those, what a region lacks is named below
            report.findings += _differences(name, by_region)
        for region, value in by_region.items():
            if name in REQUIRED and not REQUIRED[name](value):
                report.findings.append(Finding(name, f"{region}: {value!r}"))
            elif name == "secrets" and isinstance(value, dict) and MISSING in value.values():
                missing = ", ".join(names.webhook_secret(stage, s) for s, v in value.items() if v == MISSING)
                report.findings.append(Finding(name, f"{region}: {missing} missing"))
            elif name == "topic" and value == MISSING:
                report.findings.append(Finding(name, f"{region}: no alert topic (the regional stack's output)"))
            elif name == "subscriptions" and isinstance(value, list) and not any("pending" not in s for s in value):
                report.findings.append(Finding(name, f"{region}: no confirmed subscription, so no one is e-mailed"))
    if route53_read:
        _endpoint_findings(report, endpoint)
    _function_notes(report)
    _heartbeat_and_drill(report, sources, now)
    return report


def _endpoint_findings(report: ReadinessReport, endpoint: ge.GlobalEndpoint | None) -> None:
    if endpoint is None:
        report.notes.append("no global endpoint: the regional stacks have no HostedZoneId, DomainName and "
                            "RestApiId (docs/dr.md#the-global-endpoint)")
        return
    for region, expected in ((C.PRIMARY_REGION, ge.PRIMARY), (C.DR_REGION, ge.SECONDARY)):
        record = endpoint.records.get(region)
        if record is not None and record.failover != expected:
            report.findings.append(Finding("record", f"{region}: failover {record.failover}, expected {expected}"))
        check = endpoint.health_checks.get(region)
        if check is not None and check.search_string != '"role":"active"':
            report.findings.append(Finding("health check", f"{region}: searches {check.search_string!r}, "
                                                           f"expected '\"role\":\"active\"'"))


def _function_notes(report: ReadinessReport) -> None:
    functions = report.facts.get("functions", {})
    if functions and all(all(v == MISSING for v in by_name.values()) for by_name in functions.values()):
        report.notes.append("no function of this stage in either region: not deployed with chalice, or run "
                            "under `chalice local` (the local stack)")


def _heartbeat_and_drill(report: ReadinessReport, sources: Sources, now: datetime) -> None:
    controls = {region: ControlStore(sources.table(region)) for region in C.REGIONS}
    records = {region: _guarded(lambda c=control: c.get(C.FAILOVER_SK))  # type: ignore[misc]
               for region, control in controls.items()}
    record = latest([r for r in records.values() if isinstance(r, dict)])
    active = str(record["active_region"]) if record else C.PRIMARY_REGION
    standby = names.peer_region(active)
    heartbeat = _guarded(lambda: controls[standby].get(C.HEARTBEAT_SK))
    if not isinstance(heartbeat, dict):
        report.findings.append(Finding("replication", f"no replication heartbeat in {standby}"
                                       + (f" ({heartbeat})" if heartbeat else "")))
    elif (age := age_seconds(heartbeat, now)) > C.REPLICATION_STALL_SECONDS:
        report.findings.append(Finding("replication", f"the last heartbeat reached {standby} {age:.0f} s ago "
                                                      f"(limit {C.REPLICATION_STALL_SECONDS} s)"))
    report.facts["replication"] = {"active": active, "standby": standby,
                                   "heartbeat": heartbeat.get("updated_at") if isinstance(heartbeat, dict) else None}
    last = _last_drill(controls)
    report.facts["last drill"] = last
    limit = timedelta(days=C.DRILL_MAX_AGE_DAYS)
    if last["at"] is None:
        report.findings.append(Finding("last drill", "no drill or failover recorded: run one (python -m dr drill "
                                                     "on the local stack, or the runbook's game day)"))
    elif now - parse_time(str(last["at"])) > limit:
        report.findings.append(Finding("last drill", f"the last {last['what']} was at {last['at']}, more than "
                                                     f"{C.DRILL_MAX_AGE_DAYS} days ago"))
    elif last.get("passed") is False:
        report.findings.append(Finding("last drill", f"the last drill, at {last['at']}, failed"))


def _last_drill(controls: Mapping[str, ControlStore]) -> dict[str, Any]:
    """The latest of: a `dr drill` run, a finished failover (a game day in AWS is one)."""
    seen: list[dict[str, Any]] = []
    for control in controls.values():
        drill = _guarded(lambda c=control: c.get(C.LAST_DRILL_SK))  # type: ignore[misc]
        if isinstance(drill, dict) and drill.get("at"):
            seen.append({"at": drill["at"], "what": "drill", "passed": bool(drill.get("passed"))})
        intent = _guarded(lambda c=control: c.get(C.FAILOVER_INTENT_SK))  # type: ignore[misc]
        if isinstance(intent, dict) and intent.get("done") and intent.get("updated_at"):
            seen.append({"at": intent["updated_at"], "what": f"failover (to {intent.get('to_region')})"})
    if not seen:
        return {"at": None, "what": None}
    return max(seen, key=lambda s: parse_time(str(s["at"])))

"""The global endpoint (dr/regional.yaml): one DNS name with a Route 53 failover record per region,
PRIMARY in the primary region and SECONDARY in the DR region, each with a health check that passes
only while that region's `/health` says `"role":"active"`.

The operator's tools find it by the health checks' tags (application, stage, region), so no command
needs the zone or the name. `route` is Route 53's failover rule; the local stack's Global API
(local/global_api.py) answers by it, and `HealthState` is how a health check turns healthy or
unhealthy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import names

if TYPE_CHECKING:
    from mypy_boto3_route53 import Route53Client

HEALTHY_STATUS = range(200, 400)  # what an HTTP(S) health check counts as a pass
SEARCHED_BYTES = 5120  # HTTPS_STR_MATCH looks for its string in this much of the body
PRIMARY, SECONDARY = "PRIMARY", "SECONDARY"
SERVED_BY_HEADER = "X-Served-By-Region"  # the local Global API names the region that answered


@dataclass(frozen=True)
class HealthCheck:
    id: str
    region: str
    fqdn: str
    path: str
    search_string: str
    interval: int
    failure_threshold: int

    def passes(self, status: int, body: bytes) -> bool:
        """Route 53's verdict on one answer: a 2xx or 3xx whose body holds the search string."""
        return status in HEALTHY_STATUS and self.search_string.encode() in body[:SEARCHED_BYTES]


@dataclass(frozen=True)
class FailoverRecord:
    zone_id: str
    name: str
    type: str
    ttl: int | None
    region: str  # the record's SetIdentifier
    failover: str  # PRIMARY or SECONDARY
    health_check_id: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class GlobalEndpoint:
    domain: str
    records: Mapping[str, FailoverRecord]  # by region
    health_checks: Mapping[str, HealthCheck]  # by region

    def as_dict(self) -> dict[str, Any]:
        return {"domain": self.domain,
                "records": {r: rec.__dict__ | {"values": list(rec.values)} for r, rec in self.records.items()},
                "health_checks": {r: hc.__dict__ for r, hc in self.health_checks.items()}}


class HealthState:
    """A health check's status: it changes only after `threshold` answers in a row say otherwise.
    It starts with the first answer's verdict."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.healthy: bool | None = None
        self._streak = 0

    def observe(self, passed: bool) -> bool:
        if self.healthy is None:
            self.healthy = passed
        elif passed == self.healthy:
            self._streak = 0
        else:
            self._streak += 1
            if self._streak >= self.threshold:
                self.healthy, self._streak = passed, 0
        return self.healthy


def route(records: Mapping[str, FailoverRecord], healthy: Mapping[str, bool]) -> str | None:
    """The region Route 53 answers with: the primary record while its health check passes, else the
    secondary while its own passes; when both fail, the primary (Route 53 then treats every record
    of the group as healthy)."""
    by_role = {record.failover: record.region for record in records.values()}
    primary, secondary = by_role.get(PRIMARY), by_role.get(SECONDARY)
    if primary is not None and healthy.get(primary, False):
        return primary
    if secondary is not None and healthy.get(secondary, False):
        return secondary
    return primary or secondary


def _tags(route53: Route53Client, ids: list[str]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 10):  # ListTagsForResources takes at most 10 ids
        found = route53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=ids[start:start + 10])
        for resource in found["ResourceTagSets"]:
            tags[resource["ResourceId"]] = {t["Key"]: t["Value"] for t in resource.get("Tags", [])}
    return tags


def health_checks(route53: Route53Client, stage: str) -> dict[str, HealthCheck]:
    """The stage's health checks, by region (tagged as dr/regional.yaml tags them)."""
    checks = [c for page in route53.get_paginator("list_health_checks").paginate() for c in page["HealthChecks"]]
    tags = _tags(route53, [c["Id"] for c in checks])
    found: dict[str, HealthCheck] = {}
    for check in checks:
        tag = tags.get(check["Id"], {})
        if tag.get("application") != names.APP_NAME or tag.get("stage") != stage or "region" not in tag:
            continue
        config = check["HealthCheckConfig"]
        found[tag["region"]] = HealthCheck(
            id=check["Id"], region=tag["region"], fqdn=config.get("FullyQualifiedDomainName", ""),
            path=config.get("ResourcePath", "/"), search_string=config.get("SearchString", ""),
            interval=int(config.get("RequestInterval", 30)), failure_threshold=int(config.get("FailureThreshold", 3)))
    return found


def failover_records(route53: Route53Client, health_check_ids: set[str]) -> dict[str, FailoverRecord]:
    """The failover records, by region, that carry one of these health checks, in any hosted zone."""
    records: dict[str, FailoverRecord] = {}
    for page in route53.get_paginator("list_hosted_zones").paginate():
        for zone in page["HostedZones"]:
            zone_id = zone["Id"].rsplit("/", 1)[-1]
            for sets in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
                for record in sets["ResourceRecordSets"]:
                    if record.get("HealthCheckId") not in health_check_ids or "Failover" not in record:
                        continue
                    records[record.get("SetIdentifier", "")] = FailoverRecord(
                        zone_id=zone_id, name=record["Name"].rstrip("."), type=record["Type"],
                        ttl=record.get("TTL"), region=record.get("SetIdentifier", ""), failover=record["Failover"],
                        health_check_id=record["HealthCheckId"],
                        values=tuple(r["Value"] for r in record.get("ResourceRecords", [])))
    return records


def find(route53: Route53Client, stage: str) -> GlobalEndpoint | None:
    """The stage's global endpoint, or None when neither region has one."""
    checks = health_checks(route53, stage)
    if not checks:
        return None
    records = failover_records(route53, {check.id for check in checks.values()})
    domains = sorted({record.name for record in records.values()})
    return GlobalEndpoint(domain=domains[0] if domains else "", records=records, health_checks=checks)

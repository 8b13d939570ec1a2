"""CloudWatch dashboard bodies, one per topic, built from the stage, the chalice stage and the regions.

Nothing here is written per region by hand: `bodies(...)` for prod in us-east-1 and for prod-dr in
us-west-2 differ only in their parameters. Every metric is written out in full (no "." shorthand),
so that `referenced_metrics` can list them and a test can tie them to what the code emits.
See https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html
"""
from __future__ import annotations

from typing import Any

from chalicelib import constants as C
from chalicelib import names
from chalicelib.metrics import DORA_METRICS as DORA_SUMMARY_METRICS

NS = C.METRICS_NAMESPACE
API_NAME = names.APP_NAME  # the API Gateway ApiName dimension
PIPELINE_REGION = C.PRIMARY_REGION  # pipeline/pipeline.yaml is deployed in the primary region only
ROUTES = ("POST /metrics", "GET /metrics", "GET /metrics/summary", "GET /health")
HEALTH_CHECKS = ("overall", "api", "table", "replica-table", "replication", "lambda")
DORA_METRICS = tuple(DORA_SUMMARY_METRICS.values())
PIPELINE_STATES = ("SUCCEEDED", "FAILED")
TOPICS = ("overview", "replication", "health", "dora", "pipeline")

Body = dict[str, Any]
Metric = list[Any]  # [namespace, name, dim, value, ..., {options}] or [{"expression": ...}]



def metric(namespace: str, name: str, dimensions: dict[str, str], **options: Any) -> Metric:
    line: Metric = [namespace, name]
    for key, value in dimensions.items():
        line += [key, value]
    return line + [options] if options else line


def search(expression: str, stat: str, period: int, **options: Any) -> Metric:
    return [{"expression": f"SEARCH('{expression}', '{stat}', {period})", **options}]


def graph(title: str, metrics: list[Metric], region: str, stat: str = "Sum", period: int = 300,
          view: str = "timeSeries", **properties: Any) -> dict[str, Any]:
    return {"type": "metric", "properties": {"title": title, "metrics": metrics, "region": region, "stat": stat,
                                             "period": period, "view": view, **properties}}


def text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "properties": {"markdown": markdown}}


def layout(widgets: list[dict[str, Any]], width: int = 12, height: int = 6) -> Body:
    """Two graphs a row on CloudWatch's 24-column grid; a text widget takes a whole, short row."""
    placed, x, y = [], 0, 0
    for widget in widgets:
        w, h = (24, 2) if widget["type"] == "text" else (width, height)
        if x + w > 24:
            x, y = 0, y + height
        placed.append({**widget, "x": x, "y": y, "width": w, "height": h})
        x += w
        if x >= 24:
            x, y = 0, y + h
    return {"widgets": placed}


def overview(stage: str, chalice_stage: str, region: str, peer_region: str) -> Body:
    """Traffic, errors and latency per route; API Gateway; Lambda errors, duration and throttles."""
    def per_route(name: str, **options: Any) -> list[Metric]:
        return [metric(NS, name, {"Stage": stage, "Route": r}, label=f"{r} {options.get('stat', '')}".strip(),
                       **options) for r in ROUTES]

    def per_function(name: str, **options: Any) -> list[Metric]:
        return [metric("AWS/Lambda", name, {"FunctionName": f}, label=f.removeprefix(names.APP_NAME + "-"), **options)
                for f in names.functions(chalice_stage)]

    api = {"ApiName": API_NAME, "Stage": C.API_STAGE}
    table = {"TableName": names.table(stage)}
    return layout([
        text(f"# {names.api_function(chalice_stage)} in {region}\nRequests as the app measures them (stage {stage}), "
             f"API Gateway, Lambda and DynamoDB. Peer region: {peer_region}."),
        graph("Requests per route", per_route("Requests"), region),
        graph("Client (4xx) and server (5xx) errors per route",
              [*per_route("ClientErrors"), *per_route("ServerErrors")], region),
        graph("Latency p50 per route (ms)", per_route("Latency", stat="p50"), region, stat="p50"),
        graph("Latency p99 per route (ms)", per_route("Latency", stat="p99"), region, stat="p99"),
        graph("API Gateway requests, 4XX and 5XX", [metric("AWS/ApiGateway", n, api) for n in
                                                    ("Count", "4XXError", "5XXError")], region),
        graph("API Gateway latency (ms)", [metric("AWS/ApiGateway", "Latency", api, stat=s, label=s)
                                           for s in ("p50", "p99")], region, stat="p99"),
        graph("Events ingested per kind", [metric(NS, "EventsIngested", {"Stage": stage, "Kind": k}, label=k)
                                           for k in C.KINDS], region),
        graph("Lambda errors", per_function("Errors"), region),
        graph("Lambda duration p99 (ms)", per_function("Duration", stat="p99"), region, stat="p99"),
        graph("Lambda throttles", per_function("Throttles"), region),
        graph("Lambda invocations", per_function("Invocations"), region),
        graph("DynamoDB throttled reads and writes", [metric("AWS/DynamoDB", n, table) for n in
                                                      ("ReadThrottleEvents", "WriteThrottleEvents")], region),
    ])


def replication(stage: str, chalice_stage: str, region: str, peer_region: str) -> Body:
    """Replication in both directions (only the active region replicates, and reports it in its own
    region's CloudWatch), and the health check's view of both tables."""
    def both(name: str, path: str, **options: Any) -> list[Metric]:
        return [metric(NS, name, {"Stage": stage, "SourceRegion": source, "Path": path}, region=source,
                       label=f"from {source} ({path})", **options) for source in (region, peer_region)]

    def tables(where: str) -> list[Metric]:
        return [metric(NS, "HealthCheckFailed", {"Stage": stage, "Check": check}, region=where,
                       label=f"{check} seen from {where}") for check in ("table", "replica-table")]

    rpo = {"horizontal": [{"label": f"RPO target {C.RPO_TARGET_SECONDS} s", "value": C.RPO_TARGET_SECONDS}]}
    return layout([
        text(f"# {names.table(stage)} replication: {region} and {peer_region}\nThe active region replicates "
             f"(stream, then a sweep every {C.SWEEP_INTERVAL_MINUTES} min). `python -m dr status --stage {stage}` "
             f"shows the same from the tables; dr/RUNBOOK.md says what to do."),
        graph("Stream replication lag, max (s)", both("ReplicationLagSeconds", "stream"), region, stat="Maximum",
              period=60, annotations=rpo, yAxis={"left": {"min": 0}}),
        graph("Items replicated", [*both("ItemsReplicated", "stream"), *both("ItemsReplicated", "sweep")], region),
        graph("Changes found by the sweep", both("SweepChangesFound", "sweep"), region),
        graph("Table checks failed (1 = failed)", [*tables(region), *tables(peer_region)], region,
              stat="Maximum", yAxis={"left": {"min": 0, "max": 1}}),
        graph("Write lease renewed (1 = renewed; the active region only)", [
            metric(NS, "LeaseRenewed", {"Stage": stage, "Region": where}, region=where, label=where)
            for where in (region, peer_region)], region, stat="Minimum", yAxis={"left": {"min": 0, "max": 1}}),
        graph("Readiness findings (daily; 0 = us-west-2 could take over)", [
            metric(NS, "ReadinessFindings", {"Stage": stage, "Region": where}, region=where, label=where)
            for where in (region, peer_region)], region, stat="Maximum", period=86400, yAxis={"left": {"min": 0}}),
    ])


def health(stage: str, chalice_stage: str, region: str, peer_region: str) -> Body:
    """The scheduled health check, check by check, as each region's checker saw it."""
    def checks(where: str) -> list[Metric]:
        return [metric(NS, "HealthCheckFailed", {"Stage": stage, "Check": c}, region=where, label=c)
                for c in HEALTH_CHECKS]

    return layout([
        text(f"# {names.table(stage)} health checks\nEvery {C.HEALTH_CHECK_INTERVAL_MINUTES} minutes in each "
             f"region; 1 = failed, 0 = passed, no point = the check did not run (that raises the alarm too)."),
        graph(f"Health checks in {region} (1 = failed)", checks(region), region, stat="Maximum",
              yAxis={"left": {"min": 0, "max": 1}}),
        graph(f"Health checks in {peer_region} (1 = failed)", checks(peer_region), region, stat="Maximum",
              yAxis={"left": {"min": 0, "max": 1}}),
    ])


def dora(stage: str, chalice_stage: str, region: str, peer_region: str) -> Body:
    """DORA's five metrics and time to restore, per service and environment. Services are data,
    hence SEARCH; the active region publishes them, so both regions are searched (a failover moves
    the series)."""
    period = C.DORA_PUBLISH_INTERVAL_MINUTES * 60
    schema = "{" + NS + ",Environment,Service,Stage}"

    def four_key(name: str) -> list[Metric]:
        return [search(f'{schema} MetricName="{name}" Stage="{stage}"', "Average", period, id=f"e{i}",
                       region=where, label=f"${{PROP('Dim.Service')}} ${{PROP('Dim.Environment')}} ({where})")
                for i, where in enumerate((region, peer_region))]

    titles = {"DeploymentsPerDay": "Deployment frequency (per day)", "LeadTimeHours": "Change lead time (h)",
              "ChangeFailureRate": "Change fail rate (ratio)",
              "FailedDeploymentRecoveryHours": "Failed deployment recovery time (h)",
              "DeploymentReworkRate": "Deployment rework rate (ratio)", "TimeToRestoreHours": "Time to restore (h)"}
    return layout([
        text(f"# DORA software delivery metrics, stage {stage}\nOver the last {C.DORA_PUBLISH_DAYS} days, "
             "published hourly per service and environment; `GET /metrics/summary` gives the same with the tiers."),
        *[graph(titles[name], four_key(name), region, stat="Average", period=period) for name in DORA_METRICS],
    ])


def pipeline(stage: str, chalice_stage: str, region: str, peer_region: str) -> Body:
    """Builds and pipeline executions. The pipeline runs in us-east-1 whatever region shows this."""
    project = {"ProjectName": names.build_project(stage)}
    where = PIPELINE_REGION
    return layout([
        text(f"# {names.table(stage)} delivery\nCodeBuild project {names.build_project(stage)} and the "
             f"pipeline's executions, both in {where}."),
        graph("Build success rate (%)", [
            [{"expression": "100 * succeeded / builds", "id": "rate", "label": "success rate"}],
            metric("AWS/CodeBuild", "SucceededBuilds", project, id="succeeded", visible=False),
            metric("AWS/CodeBuild", "Builds", project, id="builds", visible=False),
        ], where, period=86400, yAxis={"left": {"min": 0, "max": 100}}),
        graph("Build duration (s)", [metric("AWS/CodeBuild", "Duration", project, stat=s, label=s)
                                     for s in ("Average", "Maximum")], where, stat="Average", period=3600),
        graph("Builds failed", [metric("AWS/CodeBuild", "FailedBuilds", project)], where, period=3600),
        graph("Pipeline executions by state", [metric(NS, "PipelineExecutions", {"Stage": stage, "State": s}, label=s)
                                               for s in PIPELINE_STATES], where, period=3600),
    ])


BUILDERS = {"overview": overview, "replication": replication, "health": health, "dora": dora, "pipeline": pipeline}


def bodies(stage: str, chalice_stage: str, region: str, peer_region: str) -> dict[str, Body]:
    """Dashboard name -> body, for every topic."""
    return {names.dashboard(chalice_stage, topic): BUILDERS[topic](stage, chalice_stage, region, peer_region)
            for topic in TOPICS}

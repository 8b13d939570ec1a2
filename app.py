"""DevOps Metrics: the Chalice app. Wiring only; the logic lives in chalicelib.

What a function keeps for its container's life (settings, clients, tables) is made on its first
invocation by the functions below. Imports inside functions are the cold-start budget at work: a
cold start loads only what its first invocation needs (POST /metrics is the common first request,
and chalicelib.ingest is all it loads); every chalicelib module imports at its top.
"""
from __future__ import annotations

from chalicelib import coldstart

_COLLECTING = coldstart.pause()  # until the end of this file: chalicelib/coldstart.py says why

import os
from typing import TYPE_CHECKING, Any, cast

from chalice import Chalice, IAMAuthorizer, Rate, Response
from chalice.app import CloudWatchEvent, DynamoDBEvent, Request

from chalicelib import clients, ingest, names
from chalicelib import constants as C
from chalicelib.clients import Profile
from chalicelib.config import Settings
from chalicelib.context import Context
from chalicelib.dynamodb import Table
from chalicelib.http import Reply, handle_http
from chalicelib.logs import logged_run
from chalicelib.times import utc_now
from chalicelib.tracing import enable_tracing

if TYPE_CHECKING:
    from chalicelib.delivery import PipelineHistory
    from chalicelib.probes import LambdaContext, Probes
    from chalicelib.secrets import SecretCache

app = Chalice(app_name=names.APP_NAME)
iam = IAMAuthorizer()
app.register_middleware(handle_http, "http")

_CONTEXT: Context | None = None
_HEALTH_CONTEXT: Context | None = None
_HISTORY: PipelineHistory | None = None
_PROBES: Probes | None = None
_SECRETS: SecretCache | None = None


def _context(local: Profile, peer: Profile) -> Context:
    enable_tracing(("botocore",))  # X-Ray in deployed stages only; patches before the first client
    settings = Settings.from_env()
    return Context(settings, Table(clients.dynamodb(settings.region, local), settings.table_name, settings.region),
                   Table(clients.dynamodb(settings.peer_region, peer), settings.table_name, settings.peer_region))


def context() -> Context:
    """Settings and both regions' tables. The peer is read by the lease renewal and written by
    replication, and may be the region that is down, so its client fails fast."""
    global _CONTEXT
    if _CONTEXT is None:
        with coldstart.loading():
            _CONTEXT = _context("api", "peer")
    return _CONTEXT


def health_context() -> Context:
    """The health check's own view of both regions, with clients that give up fast: a table that
    hangs is the finding, and the run must report it well inside its Lambda timeout."""
    global _HEALTH_CONTEXT
    if _HEALTH_CONTEXT is None:
        with coldstart.loading():
            _HEALTH_CONTEXT = _context("health", "health")  # not context(): it never needs the API's clients
    return _HEALTH_CONTEXT


def pipeline_history() -> PipelineHistory:
    global _HISTORY
    if _HISTORY is None:
        region = context().settings.region
        with coldstart.loading():
            from chalicelib.delivery import PipelineHistory

            _HISTORY = PipelineHistory(clients.codepipeline(region, "api"), clients.codecommit(region, "api"))
    return _HISTORY


def webhook_secrets() -> SecretCache:
    """The webhook sources' secrets, each kept at most five minutes (chalicelib.secrets)."""
    global _SECRETS
    if _SECRETS is None:
        region = context().settings.region
        with coldstart.loading():
            from chalicelib.secrets import SecretCache

            _SECRETS = SecretCache(clients.secretsmanager(region, "api"))
    return _SECRETS


def health_probes(lambda_context: LambdaContext | None) -> Probes:
    global _PROBES
    if _PROBES is None:
        settings = health_context().settings
        with coldstart.loading():
            from chalicelib.probes import aws_probes

            enable_tracing(("requests",))
            _PROBES = aws_probes(settings, lambda_context)
    return _PROBES


def _request() -> Request:
    request = app.current_request
    assert request is not None  # Chalice sets it for every HTTP invocation
    return request


def _reply(reply: Reply) -> Response:
    status, body = reply
    return Response(body=body if status != 204 else "", status_code=status)


@app.route("/metrics", methods=["POST"], authorizer=iam, content_types=["*/*"])
def post_metrics() -> Response:
    request = _request()
    return _reply(ingest.post_metrics(context(), request.headers, request.raw_body, utc_now()))


@app.route("/metrics", methods=["GET"], authorizer=iam)
def list_metrics() -> Response:
    from chalicelib import reads

    return _reply(reads.list_metrics(context(), _request().query_params))


@app.route("/metrics/summary", methods=["GET"], authorizer=iam)
def metrics_summary() -> Response:
    from chalicelib import reads

    return _reply(reads.metrics_summary(context(), _request().query_params, utc_now()))


@app.route("/metrics/{kind}/{event_id}", methods=["GET"], authorizer=iam)
def get_event(kind: str, event_id: str) -> Response:
    from chalicelib import event_by_id

    return _reply(event_by_id.get_event(context(), kind, event_id, _request().query_params))


@app.route("/metrics/{kind}/{event_id}", methods=["DELETE"], authorizer=iam)
def delete_event(kind: str, event_id: str) -> Response:
    from chalicelib import event_by_id

    return _reply(event_by_id.delete_event(context(), kind, event_id, _request().query_params, utc_now()))


@app.route("/metrics/trends", methods=["GET"], authorizer=iam)
def metrics_trends() -> Response:
    from chalicelib import reads

    return _reply(reads.metrics_trends(context(), _request().query_params, utc_now()))


@app.route("/teams", methods=["GET"], authorizer=iam)
def list_teams() -> Response:
    from chalicelib import team_routes

    return _reply(team_routes.list_teams(context()))


@app.route("/teams/{team}", methods=["PUT"], authorizer=iam, content_types=["*/*"])
def put_team(team: str) -> Response:
    from chalicelib import team_routes

    request = _request()
    return _reply(team_routes.put_team(context(), team, request.headers, request.raw_body, utc_now()))


@app.route("/teams/{team}", methods=["GET"], authorizer=iam)
def get_team(team: str) -> Response:
    from chalicelib import team_routes

    return _reply(team_routes.get_team(context(), team))


@app.route("/teams/{team}", methods=["DELETE"], authorizer=iam)
def delete_team(team: str) -> Response:
    from chalicelib import team_routes

    return _reply(team_routes.delete_team(context(), team, utc_now()))


# Public at API Gateway: GitHub, GitLab, PagerDuty and CDEvents producers cannot sign SigV4, so each
# delivery is authenticated by its source's own signature (chalicelib.webhook_auth).
@app.route("/webhooks/{source}", methods=["POST"], content_types=["*/*"])
def receive_webhook(source: str) -> Response:
    from chalicelib import webhooks

    request = _request()
    return _reply(webhooks.receive(context(), webhook_secrets(), source, request.headers, request.raw_body,
                                   request.query_params, utc_now()))


@app.route("/openapi.json", methods=["GET"])
def openapi() -> Response:
    from chalicelib import openapi

    return Response(body=openapi.document(), status_code=200)


@app.route("/health", methods=["GET"])
def health() -> Response:
    from chalicelib import reads

    return _reply(reads.health(context(), _request().query_params, utc_now()))


@app.on_cw_event(C.PIPELINE_EVENT_PATTERN, name="record_pipeline_execution")
@logged_run("record_pipeline_execution")
def record_pipeline_execution(event: CloudWatchEvent) -> None:
    from chalicelib import jobs

    jobs.record_pipeline_execution(context(), event.to_dict(), pipeline_history(), utc_now())


@app.schedule(Rate(C.SWEEP_INTERVAL_MINUTES, unit=Rate.MINUTES), name="replication_sweep")
@logged_run("replication_sweep")
def replication_sweep(event: Any) -> dict[str, Any]:
    from chalicelib import jobs

    return jobs.sweep(context(), utc_now())


@app.schedule(Rate(C.LEASE_RENEW_MINUTES, unit=Rate.MINUTES), name="renew_lease")
@logged_run("renew_lease")
def renew_lease(event: Any) -> dict[str, Any]:
    from chalicelib import jobs

    return jobs.renew_lease(context(), utc_now())


@app.schedule(Rate(C.HEALTH_CHECK_INTERVAL_MINUTES, unit=Rate.MINUTES), name=C.HEALTH_CHECK_FUNCTION)
@logged_run(C.HEALTH_CHECK_FUNCTION)
def health_check(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib import jobs

    lambda_context = cast("LambdaContext", event.context)  # chalice types it as a dict; it is Lambda's object
    return jobs.health_check(health_context(), health_probes(lambda_context), utc_now())


@app.schedule(Rate(C.READINESS_INTERVAL_HOURS, unit=Rate.HOURS), name=C.READINESS_FUNCTION)
@logged_run(C.READINESS_FUNCTION)
def readiness_check(event: Any) -> dict[str, Any]:
    from chalicelib import jobs

    return jobs.readiness_check(health_context(), utc_now())


@app.schedule(Rate(C.DORA_PUBLISH_INTERVAL_MINUTES, unit=Rate.MINUTES), name="publish_dora")
@logged_run("publish_dora")
def publish_dora(event: Any) -> dict[str, Any]:
    from chalicelib import jobs

    return jobs.publish_dora(context(), utc_now())


# The stream of this region's table; its ARN is known once the regional stack exists, so it is
# given at deploy time: TABLE_STREAM_ARN=<the stack's TableStreamArn output> chalice deploy ...
STREAM_ARN = os.environ.get(C.ENV_TABLE_STREAM_ARN)
if STREAM_ARN:
    @app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=C.STREAM_BATCH_SIZE,
                            starting_position="TRIM_HORIZON", name="replicate_stream")
    @logged_run("replicate_stream")
    def replicate_stream(event: DynamoDBEvent) -> dict[str, Any]:
        from chalicelib import jobs

        return jobs.replicate_stream(context(), event.to_dict()["Records"], utc_now())

coldstart.resume(_COLLECTING)

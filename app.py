"""DevOps Metrics: the Chalice app. Wiring only; the logic lives in chalicelib."""
from __future__ import annotations

from chalicelib import coldstart

_COLLECTING = coldstart.pause()  # until the end of this file: chalicelib/coldstart.py says why

import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from chalice import Chalice, IAMAuthorizer, Rate, Response
from chalice.app import CloudWatchEvent, DynamoDBEvent, Request

from chalicelib import api
from chalicelib import constants as C
from chalicelib.config import Settings
from chalicelib.context import Context
from chalicelib.http import handle_http
from chalicelib.logs import logged_run
from chalicelib.store import MetricsStore, utc_now
from chalicelib.tracing import enable_tracing

if TYPE_CHECKING:
    from chalicelib.delivery import PipelineHistory
    from chalicelib.health_check import Probes

app = Chalice(app_name="devops-metrics")
iam = IAMAuthorizer()
app.register_middleware(handle_http, "http")

_CONTEXT: Context | None = None
_HEALTH_CONTEXT: Context | None = None
_HISTORY: PipelineHistory | None = None
_PROBES: Probes | None = None
_AWS_CONFIG = Config(retries={"mode": "standard", "max_attempts": C.AWS_MAX_ATTEMPTS},
                     connect_timeout=C.AWS_CONNECT_TIMEOUT_SECONDS, read_timeout=C.AWS_READ_TIMEOUT_SECONDS)
# The peer region is read on every write (fencing) and may be the region that is down: fail fast.
_PEER_CONFIG = Config(retries={"mode": "standard", "max_attempts": C.PEER_MAX_ATTEMPTS},
                      connect_timeout=C.PEER_TIMEOUT_SECONDS, read_timeout=C.PEER_TIMEOUT_SECONDS)


_HEALTH_CONFIG = Config(retries={"mode": "standard", "max_attempts": C.HEALTH_AWS_MAX_ATTEMPTS},
                        connect_timeout=C.HEALTH_AWS_TIMEOUT_SECONDS, read_timeout=C.HEALTH_AWS_TIMEOUT_SECONDS)


def context() -> Context:
    """Settings and both regions' tables, created on first use and kept for the container's life."""
    global _CONTEXT
    if _CONTEXT is None:
        with coldstart.loading():
            enable_tracing(("botocore",))  # X-Ray in deployed stages only; patches before the first client
            settings = Settings.from_env()
            local = boto3.client("dynamodb", region_name=settings.region, config=_AWS_CONFIG)
            peer = boto3.client("dynamodb", region_name=settings.peer_region, config=_PEER_CONFIG)
            _CONTEXT = Context(settings, MetricsStore(local, settings.table_name, settings.region),
                               MetricsStore(peer, settings.table_name, settings.peer_region))
    return _CONTEXT


def health_context() -> Context:
    """The health check's own view of both regions, with clients that give up fast: a table that
    hangs is the finding, and the run must report it well inside its Lambda timeout."""
    global _HEALTH_CONTEXT
    if _HEALTH_CONTEXT is None:
        with coldstart.loading():
            enable_tracing(("botocore",))
            settings = Settings.from_env()  # not context(): this function never needs the API's clients
            _HEALTH_CONTEXT = Context(
                settings,
                MetricsStore(boto3.client("dynamodb", region_name=settings.region, config=_HEALTH_CONFIG),
                             settings.table_name, settings.region),
                MetricsStore(boto3.client("dynamodb", region_name=settings.peer_region, config=_HEALTH_CONFIG),
                             settings.table_name, settings.peer_region))
    return _HEALTH_CONTEXT


def pipeline_history() -> PipelineHistory:
    global _HISTORY
    if _HISTORY is None:
        region = context().settings.region
        with coldstart.loading():
            from chalicelib.delivery import PipelineHistory  # only this function needs it

            _HISTORY = PipelineHistory(boto3.client("codepipeline", region_name=region, config=_AWS_CONFIG),
                                       boto3.client("codecommit", region_name=region, config=_AWS_CONFIG))
    return _HISTORY


def health_probes(lambda_context: Any) -> Probes:
    global _PROBES
    if _PROBES is None:
        settings = health_context().settings
        region = settings.region
        with coldstart.loading():
            from chalicelib.health_check import aws_probes  # only the health check function needs it

            enable_tracing(("requests",))
            _PROBES = aws_probes(settings, lambda_context,
                                 lambda service: boto3.client(service, region_name=region, config=_HEALTH_CONFIG))
    return _PROBES


def _request() -> Request:
    request = app.current_request
    assert request is not None  # Chalice sets it for every HTTP invocation
    return request


def _reply(reply: api.Reply) -> Response:
    status, body = reply
    return Response(body=body, status_code=status)


@app.route("/metrics", methods=["POST"], authorizer=iam, content_types=["*/*"])
def post_metrics() -> Response:
    request = _request()
    return _reply(api.post_metrics(context(), request.headers, request.raw_body, utc_now()))


@app.route("/metrics", methods=["GET"], authorizer=iam)
def list_metrics() -> Response:
    return _reply(api.list_metrics(context(), _request().query_params))


@app.route("/metrics/summary", methods=["GET"], authorizer=iam)
def metrics_summary() -> Response:
    return _reply(api.metrics_summary(context(), _request().query_params, utc_now()))


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _reply(api.health(context(), _request().query_params, utc_now()))


@app.on_cw_event(C.PIPELINE_EVENT_PATTERN, name="record_pipeline_execution")
@logged_run("record_pipeline_execution")
def record_pipeline_execution(event: CloudWatchEvent) -> None:
    api.record_pipeline_execution(context(), event.to_dict(), pipeline_history(), utc_now())


@app.schedule(Rate(C.SWEEP_INTERVAL_MINUTES, unit=Rate.MINUTES), name="replication_sweep")
@logged_run("replication_sweep")
def replication_sweep(event: Any) -> dict[str, Any]:
    return api.sweep(context(), utc_now())


@app.schedule(Rate(C.HEALTH_CHECK_INTERVAL_MINUTES, unit=Rate.MINUTES), name=C.HEALTH_CHECK_FUNCTION)
@logged_run(C.HEALTH_CHECK_FUNCTION)
def health_check(event: CloudWatchEvent) -> dict[str, Any]:
    return api.health_check(health_context(), health_probes(event.context), utc_now())


@app.schedule(Rate(C.DORA_PUBLISH_INTERVAL_MINUTES, unit=Rate.MINUTES), name="publish_dora")
@logged_run("publish_dora")
def publish_dora(event: Any) -> dict[str, Any]:
    return api.publish_dora(context(), utc_now())


# The stream of this region's table; its ARN is known once the regional stack exists, so it is
# given at deploy time: TABLE_STREAM_ARN=<the stack's TableStreamArn output> chalice deploy ...
STREAM_ARN = os.environ.get("TABLE_STREAM_ARN")
if STREAM_ARN:
    @app.on_dynamodb_record(stream_arn=STREAM_ARN, batch_size=C.STREAM_BATCH_SIZE,
                            starting_position="TRIM_HORIZON", name="replicate_stream")
    @logged_run("replicate_stream")
    def replicate_stream(event: DynamoDBEvent) -> dict[str, Any]:
        return api.replicate_stream(context(), event.to_dict()["Records"], utc_now())

coldstart.resume(_COLLECTING)

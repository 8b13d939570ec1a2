"""Every tunable number of the service, and the names it reads from its environment, in one place:
limits, tiers, intervals, the key layout, the region pair, the client profiles' retries and timeouts."""
from __future__ import annotations

from typing import Final

APP_NAME: Final = "devops-metrics"  # chalice's app_name (.chalice/config.json); chalicelib.names builds on it
API_STAGE: Final = "api"  # chalice's api_gateway_stage (.chalice/config.json): the API Gateway stage

# --- Regions ------------------------------------------------------------------------------------
# The default pair; a deployment names its own with PRIMARY_REGION and DR_REGION (.chalice/config.json).
PRIMARY_REGION: Final = "us-east-1"
DR_REGION: Final = "us-west-2"
REGIONS: Final = (PRIMARY_REGION, DR_REGION)

# --- Environment variables the functions read (set per stage in .chalice/config.json) -----------
ENV_STAGE: Final = "APP_STAGE"
ENV_TABLE_NAME: Final = "TABLE_NAME"
ENV_PRIMARY_REGION: Final = "PRIMARY_REGION"
ENV_DR_REGION: Final = "DR_REGION"
ENV_ALERT_TOPIC_ARN: Final = "ALERT_TOPIC_ARN"
ENV_HEALTH_CHECK_URL: Final = "HEALTH_CHECK_URL"
ENV_DORA_ENVIRONMENTS: Final = "DORA_ENVIRONMENTS"
ENV_TABLE_STREAM_ARN: Final = "TABLE_STREAM_ARN"
ENV_XRAY_TRACING: Final = "XRAY_TRACING"
DEFAULT_STAGE: Final = "dev"

# --- Event kinds -------------------------------------------------------------------------------
KINDS: Final = ("build", "deployment", "gauge", "incident")
DEFAULT_ENVIRONMENT: Final = "production"

# --- Input limits (POST /metrics) --------------------------------------------------------------
MAX_BODY_BYTES: Final = 256 * 1024
MAX_EVENTS_PER_REQUEST: Final = 100
MAX_SERVICE_LENGTH: Final = 128
MAX_ENVIRONMENT_LENGTH: Final = 64
MAX_ID_LENGTH: Final = 128
MAX_ATTRIBUTES: Final = 20
MAX_ATTRIBUTE_KEY_LENGTH: Final = 128
MAX_ATTRIBUTE_VALUE_LENGTH: Final = 1024
MAX_TEXT_LENGTH: Final = 256  # pipeline names, severities, commit ids
MAX_GAUGE_NAME_LENGTH: Final = 255
MAX_TEAM_SERVICES: Final = 500  # services per team (PUT /teams/{team})
MAX_BUILD_DURATION_SECONDS: Final = 7 * 24 * 3600
MAX_FUTURE_SKEW_SECONDS: Final = 24 * 3600  # timestamps further ahead than this are rejected
NAME_PATTERN: Final = r"^[A-Za-z0-9._-]+$"  # service and environment
ID_PATTERN: Final = r"^[A-Za-z0-9._:-]+$"  # client ids; ':' allows ARN-like execution ids
SHA_PATTERN: Final = r"^[0-9A-Fa-f]{7,64}$"  # a commit id: abbreviated (7) to SHA-256 (64) hex
MAX_COMMITS: Final = 1000  # commits per deployment

# --- Webhooks (POST /webhooks/<source>; chalicelib/webhooks.py) ----------------------------------
WEBHOOK_SOURCES: Final = ("github", "gitlab", "pagerduty", "cdevents")
MAX_WEBHOOK_BODY_BYTES: Final = 1024 * 1024  # GitHub caps its payloads at 25 MB; ours at 1 MiB
SECRET_CACHE_SECONDS: Final = 300.0  # a function keeps a secret's versions at most this long
# A signature that matches no cached version makes one fresh read of the secret (a rotation may
# have happened since), at most this often, so that a flood of bad signatures cannot flood Secrets Manager.
SECRET_REFRESH_MIN_SECONDS: Final = 10.0
SECRET_STAGES: Final = ("AWSCURRENT", "AWSPREVIOUS")  # either version's signature is accepted
CDEVENTS_SIGNATURE_HEADER: Final = "X-CDEvents-Signature-256"  # sha256=<hex HMAC-SHA256 of the body>
INCIDENT_LABEL: Final = "incident"  # a GitHub issue with this label is an incident
DELIVERY_PK_PREFIX: Final = "WH#"  # WH#<source>#<delivery id>: a delivery already processed
DELIVERY_SK: Final = "delivery"
DELIVERY_TTL_DAYS: Final = 30  # a delivery is known as seen for this long (sources redeliver for days)
COMMIT_LOG_PK_PREFIX: Final = "R#"  # R#<source>#<repository>: the pushes and deployments of a repository
PUSH_SK_PREFIX: Final = "P#"  # P#<received at>#<delivery id>: one push, its commits in order
SHIPPED_SK_PREFIX: Final = "S#"  # S#<environment>#<deployed at>#<deployment id>: what it shipped up to
COMMIT_LOOKBACK_DAYS: Final = 90  # pushes this old or newer are searched for a deployed commit

# --- Reads (GET /metrics, GET /metrics/summary) -------------------------------------------------
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 500
DEFAULT_SUMMARY_DAYS: Final = 30
MAX_SUMMARY_DAYS: Final = 365
DEFAULT_TREND_WEEKS: Final = 12  # GET /metrics/trends: buckets when count is not given
MAX_TREND_WEEKS: Final = 52
MAX_TREND_MONTHS: Final = 24
# Incidents opened up to this long before a summary window still count when resolved inside it.
INCIDENT_LOOKBACK_DAYS: Final = 90

# --- DORA benchmarks (the tables themselves: chalicelib/benchmarks.py) ----------------------------
DEFAULT_BENCHMARK: Final = "2024"  # the newest report's clusters
MAX_EXPLAINED_EVENTS: Final = 100  # ids per metric that explain=true lists

# --- Table layout -------------------------------------------------------------------------------
GSI_NAME: Final = "gsi1"
EVENT_PK_PREFIX: Final = "M#"  # M#<environment>#<service>
IDENTITY_SK_PREFIX: Final = "ID#"  # ID#<kind>#<id> in the event's partition: one per event identity
LEGACY_IDEMPOTENCY_PK_PREFIX: Final = "ID#"  # release 0.1.0: pk=ID#<client id>, sk=ID (dr migrate)
LEGACY_IDEMPOTENCY_SK: Final = "ID"
CONTROL_PK: Final = "_control"  # per-region control items, never replicated
TEAMS_PK: Final = "TEAMS"  # one item per team: sk=<team>, replicated
FAILOVER_SK: Final = "failover"  # active region and failover epoch (owned by DR)
HEARTBEAT_SK: Final = "replication-heartbeat"  # written by the replication sweep
HEALTH_STATE_SK_PREFIX: Final = "health-state#"  # + region: the health check's alert state
HEALTH_SAMPLE_SK_PREFIX: Final = "health-sample#"  # + region#time: one sample per run, expires by TTL
TTL_ATTRIBUTE: Final = "expires_at"
# Daily rollups (chalicelib/rollups.py): in each event partition, sk=rollup#<kind>#<day>#<n> holds
# one entry per event of that kind and day; the state item says since when they are whole.
ROLLUP_SK_PREFIX: Final = "rollup#"
ROLLUP_KINDS: Final = ("deployment", "incident")  # the kinds DORA's metrics read
# A day's entries fill parts of up to this many bytes of JSON, stored compressed (about a third of it):
# a stream batch rewrites one part per day it touches (at most about 8 write units), and a quiet
# service's day is one item.
ROLLUP_PART_BYTES: Final = 24_000
ROLLUPS_PK: Final = "_rollups"  # replicated: pk=_rollups, sk=state
ROLLUP_STATE_SK: Final = "state"
ROLLUP_STATE_CACHE_SECONDS: Final = 60.0  # a function re-reads the rollups' state at most this often
# Change index (gsi "changes"): partition = the hour an item was written, sort = when#pk#sk. A sweep
# reads one or two partitions; the current hour takes every write, as a minute partition would.
CHANGES_INDEX: Final = "changes"
CHANGE_BUCKET_ATTRIBUTE: Final = "change_bucket"
CHANGE_KEY_ATTRIBUTE: Final = "change_key"
CHANGE_BUCKET_LENGTH: Final = len("2026-11-22T10")  # hour buckets
TOMBSTONE_ATTRIBUTE: Final = "tombstone"  # what a delete leaves, so that an older copy cannot return
# sk bounds: '~' sorts after every character an id, a service or a timestamp may hold.
KEY_UPPER_SENTINEL: Final = "~"

# --- Write lease (chalicelib/lease.py; docs/dr.md#the-write-lease) ---------------------------------
# The active region takes writes only inside a lease it renews every LEASE_RENEW_MINUTES, and only
# while it can read the peer's epoch: cut off from its peer, it stops within one lease, so a forced
# failover can wait it out. 150 s outlasts one missed renewal (60 s apart) with 30 s to spare, and a
# forced failover's wait (lease + role cache + clock margin, 160 s) keeps the RTO under 5 minutes.
LEASE_SECONDS: Final = 150
LEASE_RENEW_MINUTES: Final = 1
ROLE_CACHE_SECONDS: Final = 5.0  # a function re-reads its own failover record at most this often
CLOCK_MARGIN_SECONDS: Final = 5.0  # what two regions' clocks may disagree by
ENV_LEASE_SECONDS: Final = "LEASE_SECONDS"  # the local stack's drills shorten the lease
FAILOVER_INTENT_SK: Final = "failover-intent"  # a failover in progress, in the target region
LAST_DRILL_SK: Final = "last-drill"  # when `dr drill` last ran, and its verdict (both regions)

# --- Readiness (chalicelib/readiness.py; docs/dr.md#readiness) --------------------------------------
READINESS_FUNCTION: Final = "readiness_check"  # runs daily in each region
READINESS_INTERVAL_HOURS: Final = 24
DRILL_MAX_AGE_DAYS: Final = 90  # a drill (or a real failover) at least this recent, or readiness fails

# --- Replication and health -------------------------------------------------------------------
RPO_TARGET_SECONDS: Final = 60  # replication lag above this makes deep health fail
RTO_TARGET_SECONDS: Final = 300
SWEEP_INTERVAL_MINUTES: Final = 5
SWEEP_BUDGET_SECONDS: Final = 240.0  # a sweep stops (checkpoint kept) well inside its Lambda timeout
SWEEP_OVERLAP_SECONDS: Final = 60  # re-read this much before the checkpoint: writes land out of order
SWEEP_CHECKPOINT_EVERY: Final = 1000  # changes copied between two checkpoint saves in one sweep (and at its end)
# No heartbeat arriving for this long means replication has stalled.
REPLICATION_STALL_SECONDS: Final = 2 * SWEEP_INTERVAL_MINUTES * 60 + 60
TOMBSTONE_TTL_DAYS: Final = 7
SCAN_SEGMENTS: Final = 4  # parallel Scan segments for full copies and verify
HEARTBEAT_PK: Final = "_heartbeat"  # replicated: pk=_heartbeat, sk=<source region>
SWEEP_CHECKPOINT_SK: Final = "sweep-checkpoint"
STREAM_BATCH_SIZE: Final = 100

# --- Scheduled health check and alerts ----------------------------------------------------------
HEALTH_CHECK_INTERVAL_MINUTES: Final = 5
HEALTH_CHECK_FUNCTION: Final = "health_check"  # its Lambda name is <app>-<stage>-health_check
# The app's functions besides the API handler: Lambda names <app>-<stage>-<name>.
APP_FUNCTIONS: Final = ("health_check", "publish_dora", "readiness_check", "record_pipeline_execution",
                        "renew_lease", "replicate_stream", "replication_sweep")
HEALTH_PROBE_TIMEOUT_SECONDS: Final = 5.0  # GET /health?deep=true over HTTP
# The check's own AWS calls give up fast (a hanging table is the finding): about 7 s per call at
# worst, so a run that meets hanging endpoints still ends inside its 120 s Lambda timeout.
HEALTH_AWS_MAX_ATTEMPTS: Final = 2
HEALTH_AWS_TIMEOUT_SECONDS: Final = 3.0
HEALTH_SAMPLE_TTL_DAYS: Final = 14
ALERT_SUBJECT_MAX: Final = 99  # SNS e-mail subjects must be shorter than 100 characters
HEALTH_STALE_SECONDS: Final = 3 * HEALTH_CHECK_INTERVAL_MINUTES * 60  # deep health: the check stopped running
# Alerts go out on a change of state only. Recovery needs this many healthy runs in a row, so a
# check that fails every other run does not mail "recovered" and "unhealthy" in turn.
HEALTH_RECOVERY_RUNS: Final = 2
# Flapping: this many changes between pass and fail within the last HEALTH_HISTORY_RUNS runs (two
# hours) sends one "flapping" alert and pauses alerts until the history settles (at most
# ..._SETTLED changes).
HEALTH_HISTORY_RUNS: Final = 24
HEALTH_FLAP_CHANGES: Final = 4
HEALTH_FLAP_SETTLED_CHANGES: Final = 1
# The hard cap: an "unhealthy" or "flapping" e-mail waits until this long after the previous e-mail,
# so at most two e-mails (one of them "recovered") go out per interval, 48 a day, whatever happens.
ALERT_MIN_INTERVAL_MINUTES: Final = 60

# --- DORA metrics published to CloudWatch ------------------------------------------------------
DORA_PUBLISH_INTERVAL_MINUTES: Final = 60
DORA_PUBLISH_DAYS: Final = 30  # the window of the published DORA metrics, as GET /metrics/summary's default

# --- DynamoDB request shaping ------------------------------------------------------------------
BATCH_GET_MAX_KEYS: Final = 100
BATCH_WRITE_MAX_ITEMS: Final = 25  # AWS rejects more; moto accepts 26, so enforce it here
AWS_MAX_ATTEMPTS: Final = 5  # botocore "standard" retry mode: throttling, 5xx, dropped connections
AWS_CONNECT_TIMEOUT_SECONDS: Final = 2.0
AWS_READ_TIMEOUT_SECONDS: Final = 5.0
PEER_MAX_ATTEMPTS: Final = 2  # the other region's table: read for fencing, written by replication
PEER_TIMEOUT_SECONDS: Final = 1.0
# Operator commands (dr, dashboards, pipeline) fail fast on an unreachable region instead of
# retrying for minutes, but wait out a slow CloudFormation or Scan answer.
OPERATOR_MAX_ATTEMPTS: Final = 3
OPERATOR_CONNECT_TIMEOUT_SECONDS: Final = 2.0
OPERATOR_READ_TIMEOUT_SECONDS: Final = 10.0
UNPROCESSED_RETRIES: Final = 8  # rounds of UnprocessedItems/UnprocessedKeys before giving up (503)
WRITE_CONCURRENCY: Final = 8  # parallel transactions (and replica writes) in one request
TRANSACT_MAX_ITEMS: Final = 100  # operations per TransactWriteItems (AWS's limit)
REVISION_ROUNDS: Final = 8  # times a write re-reads and re-decides after losing a race for an identity

# --- Delivery (the pipeline's own DORA events) --------------------------------------------------
PIPELINE_NAME_PREFIX: Final = APP_NAME + "-"  # chalicelib.names.pipeline(stage): devops-metrics-<stage>
DELIVERY_SERVICE: Final = APP_NAME  # the service name the pipeline's events are recorded under
PIPELINE_EXECUTION_LOOKBACK: Final = 50  # executions searched for the one an event names
PIPELINE_EVENT_PATTERN: Final = {  # the EventBridge rule that feeds record_pipeline_execution
    "source": ["aws.codepipeline"],
    "detail-type": ["CodePipeline Pipeline Execution State Change"],
    "detail": {"state": ["SUCCEEDED", "FAILED"], "pipeline": [{"prefix": PIPELINE_NAME_PREFIX}]},
}

# --- Observability -----------------------------------------------------------------------------
METRICS_NAMESPACE: Final = "DevOpsMetrics"
CORRELATION_HEADER: Final = "X-Correlation-Id"
MAX_CORRELATION_ID_LENGTH: Final = 128

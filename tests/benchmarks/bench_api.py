"""DynamoDB requests per API call, and in-process latency, against moto in-process (mock_aws).

What it does
  1. Inside `moto.mock_aws`, deploys dr/regional.yaml through moto's in-process CloudFormation in
     us-east-1 (the app's region) and us-west-2 (the DR region, whose table the app may read too), so
     the tables (keys, GSIs, stream...) are the ones the template defines.
  2. Loads --deployments (default 10,000) deployment events for one service (--service, default
     "checkout") through the project's own write path, `EventStore.put_events`, in batches of 100
     events built with `chalicelib.models.parse_events` (no batch-writing of hand-made items: put_events
     is fast enough here). Timestamps are spread over the last 30 days, about 60 % carry a
     commit_timestamp, about 15 % failed or were rolled back. --incidents (default 50) incidents of the
     same service name some of those deployments, so every summary input is exercised. So that the
     naive full-table Scan has something besides this service to wade through, as a real shared table
     would, --other-events (default 5,000) events of other services and all four kinds are loaded too;
     pass --other-events 0 for a table holding one service only.
  3. Calls the real Chalice app through `chalice.test.Client` and records every DynamoDB call the app's
     own clients make (those of app.context()'s tables, ctx.table and ctx.peer; botocore
     'before-call'/'after-call' events): operation names (a call to the peer region's table is shown as
     "Op@us-west-2"), and for each Query/Scan page its ScannedCount and response size in bytes (HTTP
     body of the response). What the app writes to stdout (a JSON log line per request, EMF metric
     lines) goes to os.devnull while it is driven, so only the figures are printed.
  4. Gets the summary's inputs the naive way: a paginated full-table Scan (projecting pk, kind,
     timestamp and body), filtered client-side, then checks that the DORA figures computed from it
     equal the route's answer.
  5. Times POST /metrics (one event, without and with a client id), a GET /metrics page and
     GET /metrics/summary in-process (time.perf_counter around the test client's request, after one
     untimed warm-up call each). POSTs are cheap and run --runs times (50). The GETs run fewer times
     (--get-runs 15, --summary-runs 5) because moto's in-process Query walks and sizes every item of
     the partition on every call (~0.5 s per Query with the default data), which would otherwise take
     many minutes; raise them if you have the time.

  6. Daily rollups against the Query path: services of --rollup-deployments (10,000 and 100,000) deployments over
     a year (and 1 incident per 100), and a team of --team-services services with --rollup-team-deployments
     (1,000) each, loaded the same way; their rollups built by chalicelib.rollups.rebuild (what `dr rollups
     --rebuild` runs after its Scan); then summary and trends over 30 days and a year, read from the rollups and
     through the Query of every event, with requests, items read and bytes side by side and the answers compared.

How to read the output
  * "DynamoDB calls per request": per route, the calls by operation, and "items read" (sum of
    ScannedCount). "max page bytes" is the largest single DynamoDB response body; it must be <= 1 MiB.
    "est. max read/page" (for information) is the largest page's ScannedCount x the average stored item
    size of the service (DynamoDB's sizing rule: attribute names + values), which is what DynamoDB's
    1 MB page cap limits; moto applies that cap too. "Scan calls" must be 0: the app never scans.
    OK/FAIL marks those two checks.
  * "Summary inputs: Query (ours) vs full-table Scan (naive)": calls, items read (ScannedCount: what
    DynamoDB reads and bills), bytes received, and naive/ours ratios (> 1 means the naive way costs
    more). The Scan's cost grows with the whole table, ours with the service's events in the window
    only, so the ratio grows with --other-events (with --other-events 0 the two read about the same).
  * "In-process latency": p50/p95/mean in ms of the whole request through Chalice, and the p50 of the
    time spent inside DynamoDB calls (that is moto, in-process: its Query walks every item of the table,
    so it dominates and is not representative of AWS) and of the rest ("app p50" = total - DynamoDB,
    per request): validation, routing, JSON, DORA maths.

Run from the project root:  .venv/bin/python -m tests.benchmarks.bench_api [--deployments N] [--runs N]
It takes about 2-3 minutes with the defaults on 2 cores (loading ~15 s, the naive Scan ~30 s in moto).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tests.benchmarks.stage import DR_REGION as PEER_REGION  # the app reads its failover record too
from tests.benchmarks.stage import PRIMARY_REGION as REGION
from tests.benchmarks.stage import STAGE, TABLE

if TYPE_CHECKING:
    from chalicelib.events import EventStore

ENVIRONMENT = "production"
MIB = 1024 * 1024
JSON_HEADERS = {"Content-Type": "application/json"}

# Set before `import app` (and before any boto3 client exists): moto in-process, fake credentials.
for _name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_REGION"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "APP_STAGE": STAGE,
    "TABLE_NAME": TABLE,
    "AWS_XRAY_SDK_ENABLED": "false",
})

import warnings  # noqa: E402

from moto import mock_aws  # noqa: E402
from tabulate import tabulate  # noqa: E402

from chalicelib import clients, names  # noqa: E402
from chalicelib.dynamodb import item_size  # noqa: E402
from chalicelib.times import format_time, utc_now  # noqa: E402
from local.moto_server import repair  # noqa: E402
from ops.templates import REGIONAL_TEMPLATE, ROOT  # noqa: E402
from tests.benchmarks.stats import percentile  # noqa: E402

warnings.filterwarnings("ignore", message="IAMAuthorizer is not a supported in local mode")


# ---- recording DynamoDB calls ---------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    operation: str
    scanned: int | None  # ScannedCount of a Query/Scan page
    count: int | None  # Count of a Query/Scan page
    response_bytes: int
    seconds: float
    items: list[dict[str, Any]] | None = None  # kept for the naive Scan only


@dataclass
class Recorder:
    """Collects the DynamoDB calls a botocore client makes, via its event hooks."""

    keep_items: bool = False
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any, tag: str = "") -> None:
        """Record the client's calls; `tag` is appended to their operation names (e.g. "@us-west-2")."""
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb",
                                    lambda **kwargs: self._after(tag=tag, **kwargs))

    def take(self) -> list[Call]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls

    def _before(self, context: dict[str, Any], **_: Any) -> None:
        context["bench_t0"] = time.perf_counter()

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any],
               http_response: Any = None, tag: str = "", **_: Any) -> None:
        elapsed = time.perf_counter() - context.pop("bench_t0", time.perf_counter())
        body = getattr(http_response, "content", None) if http_response is not None else None
        size = len(body) if body is not None else len(json.dumps(parsed, default=str))
        call = Call(model.name + tag, parsed.get("ScannedCount"), parsed.get("Count"), size, elapsed,
                    parsed.get("Items") if self.keep_items else None)
        with self._lock:
            self.calls.append(call)


# ---- test data ----------------------------------------------------------------------------------

def deployment_payloads(service: str, count: int, now: datetime, rng: random.Random,
                        days: int = 30) -> list[dict[str, Any]]:
    """`count` deployments spread evenly over [now - `days` days + 1 h, now - 1 min]."""
    oldest, newest = now - timedelta(days=days) + timedelta(hours=1), now - timedelta(minutes=1)
    span = newest - oldest
    payloads = []
    for i in range(count):
        at = newest - span * (i / max(count - 1, 1))
        payload: dict[str, Any] = {
            "kind": "deployment", "service": service, "environment": ENVIRONMENT, "timestamp": format_time(at),
            "status": rng.choices(["success", "failure", "rolled_back"], weights=[85, 10, 5])[0],
            "pipeline": f"{service}-release", "commit_sha": uuid.UUID(int=rng.getrandbits(128)).hex,
        }
        if rng.random() < 0.6:
            payload["commit_timestamp"] = format_time(at - timedelta(hours=rng.uniform(0.2, 96)))
        payloads.append(payload)
    return payloads


def incident_payloads(service: str, deployments: list[tuple[str, datetime]], count: int, now: datetime,
                      rng: random.Random) -> list[dict[str, Any]]:
    """Incidents opened shortly after `count` random deployments, naming them; 90 % resolved."""
    payloads = []
    for deployment_id, deployed_at in rng.sample(deployments, min(count, len(deployments))):
        opened = deployed_at + timedelta(seconds=rng.uniform(1, 50))
        payload: dict[str, Any] = {"kind": "incident", "service": service, "environment": ENVIRONMENT,
                                   "timestamp": format_time(opened), "opened_at": format_time(opened),
                                   "severity": rng.choice(["sev1", "sev2", "sev3"]), "deployment_id": deployment_id}
        if rng.random() < 0.9:
            payload["resolved_at"] = format_time(min(opened + timedelta(minutes=rng.uniform(5, 600)), now))
        payloads.append(payload)
    return payloads


def other_payloads(count: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Events of eight other services, all four kinds, over the last 30 days."""
    payloads = []
    for i in range(count):
        at = now - timedelta(minutes=1) - timedelta(days=30) * rng.random() * 0.99
        service = f"other-{i % 8}"
        kind = ("build", "deployment", "gauge", "incident")[i % 4]
        base: dict[str, Any] = {"kind": kind, "service": service, "environment": ENVIRONMENT,
                                "timestamp": format_time(at)}
        if kind == "build":
            base.update(status=rng.choice(["succeeded", "failed"]), duration_seconds=rng.uniform(30, 900))
        elif kind == "deployment":
            base.update(status="success", commit_timestamp=format_time(at - timedelta(hours=rng.uniform(1, 48))))
        elif kind == "gauge":
            base.update(name="coverage", value=rng.uniform(50, 100), unit="Percent")
        else:
            base.update(opened_at=format_time(at), resolved_at=format_time(at + timedelta(seconds=30)), severity="sev3")
        payloads.append(base)
    return payloads


def team_payloads(services: int, per_service: int, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Deployments of the team's other services (team-1 ...), over the last 12 weeks."""
    payloads = []
    for n in range(1, services):
        for _ in range(per_service):
            at = now - timedelta(minutes=1) - timedelta(weeks=12) * rng.random() * 0.99
            payloads.append({"kind": "deployment", "service": f"team-{n}", "environment": ENVIRONMENT,
                             "timestamp": format_time(at), "status": rng.choice(["success"] * 6 + ["failure"]),
                             "commit_timestamp": format_time(at - timedelta(hours=rng.uniform(1, 48)))})
    return payloads


def load(store: EventStore, payloads: list[dict[str, Any]], now: datetime) -> list[str]:
    """Through the project's own write path: parse_events + EventStore.put_events, 100 per call."""
    from chalicelib.models import parse_events

    ids: list[str] = []
    for start in range(0, len(payloads), 100):
        events = parse_events({"events": payloads[start:start + 100]}, now)
        ids += store.put_events(events, now).ids
    return ids


# ---- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def app_output() -> Iterator[None]:
    """While the app is driven: its stdout (one JSON log line per request, EMF metric lines) into
    os.devnull, a real file, so that writing them costs about what it does in Lambda and only the
    benchmark's own figures reach stdout."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def by_operation(calls: list[Call]) -> str:
    counts = Counter(c.operation for c in calls)
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items())) or "-"


def request(client: Any, method: str, path: str, body: bytes | None = None) -> Any:
    if method == "POST":
        return client.http.post(path, headers=JSON_HEADERS, body=body or b"")
    if method == "DELETE":
        return client.http.delete(path)
    return client.http.get(path)


def expect(response: Any, status: int, what: str) -> None:
    if response.status_code != status:
        raise SystemExit(f"{what}: expected HTTP {status}, got {response.status_code}: {response.body[:500]!r}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=10_000,
                        help="deployment events of the measured service (default 10000)")
    parser.add_argument("--incidents", type=int, default=50,
                        help="incidents of the measured service naming some of its deployments (default 50)")
    parser.add_argument("--other-events", type=int, default=5_000,
                        help="events of 8 other services, all kinds, in the same table (default 5000)")
    parser.add_argument("--service", default="checkout", help="the measured service (default checkout)")
    parser.add_argument("--team-services", type=int, default=20,
                        help="services of the measured team: the service and team-1... (default 20)")
    parser.add_argument("--team-deployments", type=int, default=150,
                        help="deployments of each other team service over 12 weeks (default 150)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs of each POST /metrics (default 50)")
    parser.add_argument("--get-runs", type=int, default=15,
                        help="timed runs of the GET /metrics page; each costs ~2 s of moto time with the "
                             "default data (default 15)")
    parser.add_argument("--summary-runs", type=int, default=5,
                        help="timed runs of GET /metrics/summary, which reads every event of the window "
                             "through moto, ~6 s each with the default data (default 5)")
    parser.add_argument("--rollup-deployments", default="10000,100000",
                        help="for the rollups against the Query path: services of this many deployments over a "
                             "year, comma-separated (default 10000,100000)")
    parser.add_argument("--rollup-team-deployments", type=int, default=1_000,
                        help="deployments of each of the --team-services services of a year-long team (default 1000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the test data (default 7)")
    args = parser.parse_args(argv)
    if min(args.deployments, args.runs, args.get_runs, args.summary_runs) < 1:
        parser.error("--deployments, --runs, --get-runs and --summary-runs must be at least 1")
    return args


# ---- the benchmark ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    repair()  # else moto copies the table per transaction item, and sorts it per Query (local/moto_server.py)
    with mock_aws():
        return run(args, started)


def run(args: argparse.Namespace, started: float) -> int:
    for region in (REGION, PEER_REGION):
        cfn = clients.cloudformation(region, "operator")
        cfn.create_stack(StackName=names.stack(STAGE, "regional"), TemplateBody=REGIONAL_TEMPLATE.read_text(),
                         Parameters=[{"ParameterKey": "Stage", "ParameterValue": STAGE}])
        status = cfn.describe_stacks(StackName=names.stack(STAGE, "regional"))["Stacks"][0]["StackStatus"]
        if status != "CREATE_COMPLETE":
            raise SystemExit(f"the regional stack in {region} is {status}")

    from chalice.test import Client

    import app as app_module
    from chalicelib import constants as C
    from chalicelib import dora
    from chalicelib.benchmarks import BENCHMARKS
    from chalicelib.keys import event_pk

    app_module._CONTEXT = None
    with app_output():
        ctx = app_module.context()
    recorder = Recorder()
    recorder.attach(ctx.table.client)
    if ctx.peer is not None and ctx.peer.client is not ctx.table.client:
        recorder.attach(ctx.peer.client, tag=f"@{ctx.peer.region}")

    rng = random.Random(args.seed)
    service = args.service
    load_now = utc_now()
    t0 = time.perf_counter()
    payloads = deployment_payloads(service, args.deployments, load_now, rng)
    with app_output():
        ids = load(ctx.events, payloads, load_now)
        deployed = [(i, datetime.fromisoformat(p["timestamp"])) for i, p in zip(ids, payloads, strict=True)]
        load(ctx.events, incident_payloads(service, deployed, args.incidents, load_now, rng), load_now)
        load(ctx.events, other_payloads(args.other_events, load_now, rng), load_now)
        load(ctx.events, team_payloads(args.team_services, args.team_deployments, load_now, rng), load_now)
    load_seconds = time.perf_counter() - t0
    load_calls = recorder.take()
    print(f"Loaded {args.deployments:,} deployments + {min(args.incidents, args.deployments):,} incidents of "
          f"{service!r} and {args.other_events:,} events of other services through EventStore.put_events "
          f"in {load_seconds:.1f} s ({by_operation(load_calls)}).\n")

    # -- 1. DynamoDB calls per request ----------------------------------------------------------
    client = Client(app_module.app, stage_name=STAGE, project_dir=str(ROOT))
    from chalicelib import jobs

    with app_output():
        jobs.renew_lease(ctx, utc_now())  # as the scheduled renew_lease function keeps it, every minute
    recorder.take()
    routes: list[tuple[str, str, str, bytes | None, int]] = [
        ("GET /metrics?service=S&limit=100", "GET", f"/metrics?service={service}&limit=100", None, 200),
        ("GET /metrics?service=S&kind=deployment&limit=500", "GET",
         f"/metrics?service={service}&kind=deployment&limit=500", None, 200),
        ("GET /metrics/summary?service=S&days=30", "GET", f"/metrics/summary?service={service}&days=30", None, 200),
        ("POST /metrics (1 event, no id)", "POST", "/metrics",
         json.dumps({"kind": "deployment", "service": "bench-post", "status": "success"}).encode(), 201),
        ("POST /metrics (1 event, client id, new)", "POST", "/metrics",
         json.dumps({"kind": "deployment", "service": "bench-post", "status": "in_progress",
                     "id": "bench-count-1"}).encode(), 201),
        ("POST /metrics (1 event, client id, update)", "POST", "/metrics",
         json.dumps({"kind": "deployment", "service": "bench-post", "status": "success",
                     "id": "bench-count-1"}).encode(), 201),
        ("POST /metrics (1 event, client id, duplicate)", "POST", "/metrics",
         json.dumps({"kind": "deployment", "service": "bench-post", "status": "success",
                     "id": "bench-count-1"}).encode(), 201),
        ("DELETE /metrics/deployment/{id}?service=S", "DELETE", "/metrics/deployment/bench-count-1?service=bench-post",
         None, 204),
    ]
    measured: dict[str, list[Call]] = {}
    summary_body: dict[str, Any] = {}
    list_page: dict[str, Any] = {}
    for label, method, path, body, status_code in routes:
        with app_output():
            response = request(client, method, path, body)
        expect(response, status_code, label)
        measured[label] = recorder.take()
        if "summary" in label:
            summary_body = response.json_body
        elif "kind=deployment" in label:
            list_page = response.json_body

    # -- 2. the naive way: a full-table Scan, filtered client-side -------------------------------
    window_end = datetime.fromisoformat(summary_body["window"]["end"])
    window_start = datetime.fromisoformat(summary_body["window"]["start"])
    incident_start = window_start - timedelta(days=C.INCIDENT_LOOKBACK_DAYS)
    scan_client = clients.client("dynamodb", REGION, "operator")  # untyped: its items are plain JSON here
    scan_recorder = Recorder(keep_items=True)
    scan_recorder.attach(scan_client)
    t0 = time.perf_counter()
    # The naive reader projects what it filters on and the body; DynamoDB still reads (and bills)
    # every whole item of the table.
    for _ in scan_client.get_paginator("scan").paginate(
            TableName=TABLE, ProjectionExpression="pk, #k, #t, body",
            ExpressionAttributeNames={"#k": "kind", "#t": "timestamp"}):
        pass
    scan_seconds = time.perf_counter() - t0
    scan_calls = scan_recorder.take()
    pk = event_pk(ENVIRONMENT, service)
    # event items only: an identity record (sk=ID#...) has a kind but no timestamp or body
    scanned_items = [item for call in scan_calls for item in (call.items or []) if "body" in item]
    lo, hi = format_time(window_start), format_time(window_end)
    naive_deployments = [json.loads(i["body"]["S"]) for i in scanned_items
                         if i["pk"]["S"] == pk and i["kind"]["S"] == "deployment" and lo <= i["timestamp"]["S"] <= hi]
    naive_incidents = [json.loads(i["body"]["S"]) for i in scanned_items
                       if i["pk"]["S"] == pk and i["kind"]["S"] == "incident"
                       and format_time(incident_start) <= i["timestamp"]["S"] <= hi]
    naive_summary = dora.summarize(naive_deployments, naive_incidents, window_start, window_end, summary_body["days"],
                                   BENCHMARKS[summary_body["benchmark"]["name"]])
    same_answer = all(summary_body[key] == value for key, value in naive_summary.items())

    sample = scan_client.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": {"S": pk}}, Limit=500)["Items"]
    scan_recorder.take()
    avg_item = statistics.fmean(item_size(i) for i in sample)  # whole stored items of S

    rows = []
    checks_ok = True
    for label, calls in measured.items():
        pages = [c for c in calls if c.operation in ("Query", "Scan")]
        max_bytes = max((c.response_bytes for c in calls), default=0)
        max_scanned = max((c.scanned or 0 for c in pages), default=0)
        scans = sum(1 for c in calls if c.operation == "Scan")
        ok = max_bytes <= MIB and scans == 0
        checks_ok &= ok
        rows.append([label, by_operation(calls), len(calls), sum(c.scanned or 0 for c in pages),
                     f"{max_bytes:,}", f"{max_scanned * avg_item / 1024:,.0f} KiB", scans, "OK" if ok else "FAIL"])
    print("DynamoDB calls per request (the app's own clients)")
    print(tabulate(rows, headers=["route", "calls by operation", "calls", "items read", "max page bytes",
                                  "est. max read/page", "Scan calls", "<=1 MiB, no Scan"],
                   colalign=("left", "left", "right", "right", "right", "right", "right", "left")))
    print(f"(S = {service!r}; average stored item size of S = {avg_item:,.0f} bytes, so DynamoDB's 1 MB "
          f"page cap is about {1_000_000 / max(avg_item, 1):,.0f} items; the kind=deployment page served "
          f"{len(list_page.get('items', []))} items.)\n")

    # A write's floor is one request: the conditional write itself. Ours adds, for an event with an
    # id, the read of its identity record that decides created / updated / duplicate / stale; and the
    # read of this region's failover record (its role and lease), at most once per ROLE_CACHE_SECONDS
    # per function. Before the lease, every write also read both regions' failover
    # records: two GetItems, one of them across regions.
    write_rows = []
    for label, calls in measured.items():
        if not label.startswith(("POST", "DELETE")):
            continue
        cross = sum(1 for c in calls if c.operation.endswith(f"@{PEER_REGION}"))
        role_reads = sum(1 for c in calls if c.operation == "GetItem") if label.startswith("POST") else 0
        store = len(calls) - cross - role_reads
        before = store + 2
        write_rows.append([label, by_operation(calls), cross, role_reads, store, 1, f"{store / 1:.0f}x",
                           f"{before} (1)", f"{len(calls)}", f"{before / max(len(calls), 1):.1f}x"])
    print("DynamoDB requests per write: ours vs the floor (one conditional write) and vs before the lease (a fence "
          "read in both regions on every write)")
    print(tabulate(write_rows, headers=["route", "calls by operation", "cross-region", "role reads",
                                        "store requests", "floor", "store / floor", "before (cross-region)",
                                        "now", "before / now"],
                   colalign=("left", "left", "right", "right", "right", "right", "right", "right", "right",
                             "right")))
    print("(a duplicate writes nothing: its one store request is the read that finds it; an update moves the "
          "event item in the same transaction when its timestamp changes; the role read is cached for "
          f"{C.ROLE_CACHE_SECONDS:g} s per function, so a busy function makes about one per 5 s, not one per write.)\n")

    # -- summary, trends and a team of services, side by side ------------------------------------
    team = [service] + [f"team-{n}" for n in range(1, args.team_services)]
    with app_output():
        expect(client.http.put("/teams/bench-team", headers=JSON_HEADERS, body=json.dumps({"services": team})), 201,
               "PUT /teams/bench-team")
    recorder.take()
    reads = [("GET /metrics/summary?service=S&days=30 (today's)", f"/metrics/summary?service={service}&days=30"),
             ("GET /metrics/trends?service=S (12 weeks)", f"/metrics/trends?service={service}&bucket=week&count=12"),
             (f"GET /metrics/summary?team=T&days=30 ({len(team)} services)",
              "/metrics/summary?team=bench-team&days=30"),
             (f"GET /metrics/trends?team=T (12 weeks, {len(team)} services)",
              "/metrics/trends?team=bench-team&bucket=week&count=12")]
    side: list[tuple[str, list[Call]]] = []
    for label, path in reads:
        with app_output():
            expect(request(client, "GET", path), 200, label)
        side.append((label, recorder.take()))
    base_calls, base_read = len(side[0][1]), sum(c.scanned or 0 for c in side[0][1] if c.scanned)
    print("Summary, trends and a team: DynamoDB requests and items read, against today's summary")
    print(tabulate([[label, by_operation(calls), len(calls), f"{len(calls) / base_calls:.1f}x",
                     f"{sum(c.scanned or 0 for c in calls):,}",
                     f"{sum(c.scanned or 0 for c in calls) / max(base_read, 1):.1f}x"] for label, calls in side],
                   headers=["request", "calls by operation", "calls", "vs summary", "items read", "vs summary"],
                   colalign=("left", "left", "right", "right", "right", "right")))
    print(f"(the team: {service!r} and {len(team) - 1} services of {args.team_deployments} deployments each over "
          "12 weeks; every read is Queries of the services' partitions, none scans.)\n")

    ours = [c for c in measured["GET /metrics/summary?service=S&days=30"]]
    ours_calls, naive_calls = len(ours), len(scan_calls)
    ours_read = sum(c.scanned or 0 for c in ours)
    naive_read = sum(c.scanned or 0 for c in scan_calls)
    ours_bytes = sum(c.response_bytes for c in ours)
    naive_bytes = sum(c.response_bytes for c in scan_calls)
    print("Summary inputs: Query (ours) vs full-table Scan filtered client-side (naive)")
    print(tabulate([
        ["DynamoDB calls", ours_calls, naive_calls, f"{naive_calls / ours_calls:.2f}x"],
        ["items read (ScannedCount)", f"{ours_read:,}", f"{naive_read:,}", f"{naive_read / max(ours_read, 1):.2f}x"],
        ["bytes received", f"{ours_bytes:,}", f"{naive_bytes:,}", f"{naive_bytes / max(ours_bytes, 1):.2f}x"],
        ["Scan calls", sum(1 for c in ours if c.operation == "Scan"), naive_calls, "-"],
    ], headers=["", "ours (Query)", "naive (Scan)", "naive / ours"], colalign=("left", "right", "right", "right")))
    print(f"(table: {naive_read:,} items; the Scan kept {len(naive_deployments):,} deployments and "
          f"{len(naive_incidents):,} incidents; DORA figures from the Scan equal the route's answer: "
          f"{'yes' if same_answer else 'NO'}; the Scan took {scan_seconds:.1f} s in moto.)\n")

    same_rollups = rollups_against_queries(args, ctx, recorder, rng)

    # -- 3. in-process latency ------------------------------------------------------------------
    def post_no_id(_: int) -> Any:
        body = {"kind": "deployment", "service": "bench-post", "status": "success",
                "commit_timestamp": format_time(utc_now() - timedelta(hours=2))}
        return request(client, "POST", "/metrics", json.dumps(body).encode())

    def post_with_id(run: int) -> Any:
        body = {"kind": "deployment", "service": "bench-post", "status": "success",
                "id": f"bench-{run}-{uuid.uuid4().hex}"}
        return request(client, "POST", "/metrics", json.dumps(body).encode())

    def get_page(_: int) -> Any:
        return request(client, "GET", f"/metrics?service={service}&limit=100")

    def get_summary(_: int) -> Any:
        return request(client, "GET", f"/metrics/summary?service={service}&days=30")

    timed: list[tuple[str, Callable[[int], Any], int, int]] = [
        ("POST /metrics (1 event, no id)", post_no_id, 201, args.runs),
        ("POST /metrics (1 event, client id, new)", post_with_id, 201, args.runs),
        ("GET /metrics?service=S&limit=100", get_page, 200, args.get_runs),
        ("GET /metrics/summary?service=S&days=30", get_summary, 200, args.summary_runs),
    ]
    rows = []
    cross_region_posts = [0, 0]  # cross-region calls, POSTs timed
    for label, call, status_code, runs in timed:
        totals, in_ddb, app_only = [], [], []
        with app_output():
            expect(call(-1), status_code, label)  # one warm-up call, not timed
            recorder.take()
            for run in range(runs):
                t0 = time.perf_counter()
                response = call(run)
                elapsed = time.perf_counter() - t0
                expect(response, status_code, label)
                taken = recorder.take()
                ddb = sum(c.seconds for c in taken)
                if label.startswith("POST"):
                    cross_region_posts[0] += sum(1 for c in taken if c.operation.endswith(f"@{PEER_REGION}"))
                    cross_region_posts[1] += 1
                totals.append(elapsed * 1000)
                in_ddb.append(ddb * 1000)
                app_only.append((elapsed - ddb) * 1000)
        rows.append([label, runs, f"{percentile(totals, 50):.1f}", f"{percentile(totals, 95):.1f}",
                     f"{statistics.fmean(totals):.1f}", f"{percentile(in_ddb, 50):.1f}",
                     f"{percentile(app_only, 50):.1f}"])
    print("In-process latency through chalice.test.Client (ms)")
    print(tabulate(rows, headers=["route", "runs", "p50", "p95", "mean", "DynamoDB (moto) p50", "app p50"],
                   colalign=("left", "right", "right", "right", "right", "right", "right")))
    print(f"\nCross-region calls over the {cross_region_posts[1]} timed POSTs: {cross_region_posts[0]} "
          f"({cross_region_posts[0] / max(cross_region_posts[1], 1):.2f} per POST; before the lease: 1 per POST).")
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s. "
          f"Checks (page <= 1 MiB, no Scan, same DORA answer, rollups' answers equal the Query path's): "
          f"{'OK' if checks_ok and same_answer and same_rollups else 'FAIL'}")
    return 0 if checks_ok and same_answer and same_rollups else 1


# ---- the daily rollups against the Query path ----------------------------------------------------

def rollups_against_queries(args: argparse.Namespace, ctx: Any, recorder: Recorder, rng: random.Random) -> bool:
    """Year-long services and a year-long team: summary and trends over 30 and 365 days, read from
    the daily rollups and through today's Query path, with the answers compared. Returns whether
    every pair of answers was equal."""
    from chalicelib import constants as C
    from chalicelib import rollups
    from chalicelib.keys import event_pk
    from chalicelib.summary import summary_of
    from chalicelib.trends import trends

    now = utc_now()
    sizes = [int(n) for n in str(args.rollup_deployments).split(",") if n.strip()]
    team = [f"year-team-{n}" for n in range(args.team_services)]
    t0 = time.perf_counter()
    with app_output():
        for size in sizes:
            payloads = deployment_payloads(f"year-{size}", size, now, rng, days=365)
            ids = load(ctx.events, payloads, now)
            deployed = [(i, datetime.fromisoformat(p["timestamp"])) for i, p in zip(ids, payloads, strict=True)]
            load(ctx.events, incident_payloads(f"year-{size}", deployed, size // 100, now, rng), now)
        for name in team:
            load(ctx.events, deployment_payloads(name, args.rollup_team_deployments, now, rng, days=365), now)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    # what `dr rollups --rebuild` does after its Scan (which moto in-process sorts the whole table for,
    # page after page): each service's days, from its events, through rollups.rebuild
    services = [f"year-{size}" for size in sizes] + team
    first = format_time(now - timedelta(days=366))[:10]
    day_list = sorted({format_time(now - timedelta(days=n))[:10] for n in range(367)})
    differences = [rollups.DayDifference(event_pk(ENVIRONMENT, service), kind, day, 0, 0, 0)
                   for service in services for kind in C.ROLLUP_KINDS for day in day_list if day >= first]
    written = rollups.rebuild(ctx.table, differences, now)
    days = len(differences)
    built = time.perf_counter() - t0
    recorder.take()
    print(f"Daily rollups: loaded {', '.join(f'{n:,}' for n in sizes)} deployments over 365 days (and 1 incident "
          f"per 100) and a team of {len(team)} services with {args.rollup_team_deployments:,} each, in "
          f"{loaded:.0f} s; the rebuild wrote {written.parts:,} parts for {days:,} service-days in "
          f"{built:.0f} s.")

    cases: list[tuple[str, list[str], str, Callable[[Any], Any]]] = []
    for size in sizes:
        for days_ in (30, 365):
            cases.append((f"{size:,} deployments, summary, {days_} days", [f"year-{size}"], "summary",
                          lambda source, d=days_, s=size: summary_of(source, [f"year-{s}"], ENVIRONMENT, d, now,
                                                                     "2024", False)))
        cases.append((f"{size:,} deployments, trends, 5 weeks", [f"year-{size}"], "trends",
                      lambda source, s=size: trends(source, [f"year-{s}"], ENVIRONMENT, "week", 5, now, "2024")))
        cases.append((f"{size:,} deployments, trends, 12 months", [f"year-{size}"], "trends",
                      lambda source, s=size: trends(source, [f"year-{s}"], ENVIRONMENT, "month", 12, now, "2024")))
    for days_ in (30, 365):
        cases.append((f"team of {len(team)}, summary, {days_} days", team, "summary",
                      lambda source, d=days_: summary_of(source, team, ENVIRONMENT, d, now, "2024", False)))
    cases.append((f"team of {len(team)}, trends, 12 months", team, "trends",
                  lambda source: trends(source, team, ENVIRONMENT, "month", 12, now, "2024")))

    store = rollups.RollupStore(ctx.table)
    rows = []
    equal = True
    for label, _, _, read in cases:
        answer_queries = read(ctx.events)
        queries = recorder.take()
        answer_rollups = read(store)
        ours = recorder.take()
        same = answer_queries == answer_rollups
        equal &= same
        q_items, r_items = sum(c.scanned or 0 for c in queries), sum(c.scanned or 0 for c in ours)
        q_bytes, r_bytes = sum(c.response_bytes for c in queries), sum(c.response_bytes for c in ours)
        rows.append([label, len(ours), len(queries), f"{len(queries) / max(len(ours), 1):.1f}x", f"{r_items:,}",
                     f"{q_items:,}", f"{q_items / max(r_items, 1):.0f}x", f"{r_bytes / 1e6:.2f}",
                     f"{q_bytes / 1e6:.2f}", f"{q_bytes / max(r_bytes, 1):.1f}x", "yes" if same else "NO"])
    print("Summaries and trends: daily rollups (ours) against the Query of every event (today's path)")
    print(tabulate(rows, headers=["read", "requests", "Query path", "ratio", "items read", "Query path", "ratio",
                                  "MB read", "Query path", "ratio", "same answer"],
                   colalign=("left", *["right"] * 10)))
    print("(requests and items read are DynamoDB's: Query pages and their ScannedCount; MB is the responses' bodies. "
          "The rollups are read eventually consistent, the events as today.)\n")

    print("(what keeping the rollups costs the stream handler is in bench_local_stack.)\n")
    return equal


if __name__ == "__main__":
    sys.exit(main())

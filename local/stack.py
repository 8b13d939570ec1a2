"""The local stack: moto's server, the regional template in both regions, the primary and the
standby app under `chalice local`, and the demo data. One foreground process; Ctrl-C stops it all."""
from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

import requests

from chalicelib import constants as C
from chalicelib import global_endpoint, names
from chalicelib.constants import DR_REGION, ENV_LEASE_SECONDS, PRIMARY_REGION, WEBHOOK_SOURCES
from chalicelib.control import ControlStore
from chalicelib.dynamodb import Table
from dashboards.report import write_report
from dr import verify
from local import lifeline
from local.alert_console import QUEUE_NAME, AlertConsole
from local.cloudwatch import apply_monitoring_stack_alarms
from local.demo import load_demo_data
from local.emf import EmfForwarder
from local.emulator import Emulator, apply_global_endpoint, clean_env, deploy_all
from local.global_api import GlobalApi
from local.harness import Inbox, free_port
from local.outage import RegionSwitch, caller_key
from ops.api import Api
from ops.templates import REGIONAL_TEMPLATE, ROOT, load_template

STAGE = "dev"  # the primary's stage; the standby runs its DR twin, dev-dr
LOG_DIR = ROOT / ".local-stack"
REPORT_FILE = LOG_DIR / "report.html"  # the demo team's DORA report (python -m dashboards report)
DEMO_REPORT_TEAM = "storefront"
STATE_FILE = LOG_DIR / "stack.json"  # how to reach the running stack: `python -m local run` reads it
# The global endpoint's hosted zone and name in the emulator (dr/regional.yaml's HostedZoneId, DomainName).
HOSTED_ZONE = "devops-metrics.test"
GLOBAL_DOMAIN = f"api.{HOSTED_ZONE}"
# DynamoDB closes a stream shard every few hours and opens a child; the local stack's emulator closes
# one every 1,000 records, so the stream pollers follow shard changes in every session.
SHARD_RECORDS = 1000
STOP_WITHIN = 10.0  # seconds the children have to stop on SIGTERM before they are killed


@dataclass
class LocalStack:
    moto_port: int = 5000
    primary_port: int = 8000
    standby_port: int = 8001
    global_port: int = 8002
    demo_data: bool = True
    emulator: Emulator | None = None  # what everything talks to: the region switch in front of moto
    backend: Emulator | None = None  # moto's server itself
    switch: RegionSwitch | None = None
    sweep_every: float = 60.0
    health_every: float = 60.0
    endpoint_check_every: float | None = None  # the Global API's health checks; None: their RequestInterval
    lease_seconds: float | None = None  # None: the app's own (chalicelib.constants.LEASE_SECONDS)
    global_api: GlobalApi | None = None
    console: AlertConsole | None = None
    forwarder: EmfForwarder | None = None
    apps: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log_dir: Path = LOG_DIR  # the logs, the report and the state file (a benchmark's stack keeps its own)

    @property
    def state_file(self) -> Path:
        return self.log_dir / STATE_FILE.name

    @property
    def primary_url(self) -> str:
        return f"http://127.0.0.1:{self.primary_port}"

    @property
    def standby_url(self) -> str:
        return f"http://127.0.0.1:{self.standby_port}"

    @property
    def global_url(self) -> str:
        return f"http://127.0.0.1:{self.global_port}"

    def start(self) -> None:
        self.log_dir.mkdir(exist_ok=True)
        _step(f"starting moto's server behind a region switch on port {self.moto_port} "
              f"(log: {self.log_dir / 'moto.log'})")
        self.backend = Emulator.start(free_port(), self.log_dir / "moto.log", shard_records=SHARD_RECORDS)
        self.switch = RegionSwitch(self.moto_port, self.backend.endpoint)
        self.switch.start()
        self.emulator = Emulator(f"http://127.0.0.1:{self.moto_port}")
        _step(f"deploying dr/regional.yaml (stage {STAGE}) to {PRIMARY_REGION} and {DR_REGION}")
        self.outputs = deploy_all(self.emulator, STAGE, (PRIMARY_REGION, DR_REGION))
        _step(f"created the webhook secrets ({names.webhook_secret(STAGE, '<source>')}) in both regions; "
              f"python -m dr sync-secrets gives {DR_REGION} the values of {PRIMARY_REGION}")
        self._sync_webhook_secrets()
        _step(f"marked the daily rollups of the new, empty table whole: python -m dr rollups --rebuild "
              f"--stage {STAGE} (docs/deploying.md)")
        self._run_command("dr", ["rollups", "--rebuild", "--stage", STAGE], self.log_dir / "rollups.log")
        self._create_global_endpoint()
        self._deploy_monitoring()
        for region, port in ((PRIMARY_REGION, self.primary_port), (DR_REGION, self.standby_port)):
            stage = names.chalice_stage(STAGE, region)
            _step(f"starting the app (stage {stage}) for {region} on port {port} "
                  f"(log: {self.log_dir / f'app-{region}.log'})")
            self.apps[region] = self._start_app(region, stage, port)
        for region, url in ((PRIMARY_REGION, self.primary_url), (DR_REGION, self.standby_url)):
            self._wait_healthy(region, url)
        self._start_global_api()
        self._start_alert_console()
        self._start_metrics_forwarder()
        for region in (PRIMARY_REGION, DR_REGION):
            _step(f"starting the stream poller and scheduler for {region} "
                  f"(log: {self.log_dir / f'workers-{region}.log'})")
            self.workers[region] = self._start_workers(region)
        self.state_file.write_text(json.dumps({"global_url": self.global_url, **{
            region: {"env": self._worker_env(region), "args": self._worker_args(region)}
            for region in (PRIMARY_REGION, DR_REGION)}}, indent=2))
        if self.demo_data:
            count = load_demo_data(self.global_url, datetime.now(timezone.utc))
            _step(f"loaded {count} demo events through POST /metrics, and two teams (GET /teams)")
        self._wait_until_the_standby_is_whole()
        if self.demo_data:
            report = write_report(Api(self.primary_url), {"team": DEMO_REPORT_TEAM}, self.log_dir / REPORT_FILE.name)
            _step(f"wrote the DORA report of the team {DEMO_REPORT_TEAM}: {report} (open it in a browser)")

    def _wait_until_the_standby_is_whole(self, timeout: float = 60.0) -> None:
        """Until the standby holds every item the primary holds at the same versions (what `dr verify`
        compares), each region's daily rollups hold its events, and the primary's heartbeat has reached
        the standby (what `dr status` and `dr failover` read)."""
        assert self.emulator is not None
        primary, standby = (Table(self.emulator.dynamodb(region), self.outputs[region]["TableName"], region)
                            for region in (PRIMARY_REGION, DR_REGION))
        deadline = time.monotonic() + timeout
        while True:
            behind = sum(len(verify.check_rollups(table).differing) for table in (primary, standby))
            heartbeat = ControlStore(standby).get(C.HEARTBEAT_SK)
            differences = verify.compare(primary, standby)
            if heartbeat is not None and not differences and not behind:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not catch up within {timeout:.0f} s: {len(differences)} "
                                   f"differences, {behind} rollup days behind, "
                                   f"{'a' if heartbeat else 'no'} heartbeat "
                                   f"(see {self.log_dir / 'workers-us-east-1.log'})")
            time.sleep(0.2)
        _step(f"{DR_REGION} holds what {PRIMARY_REGION} holds ({len(verify.live_versions(primary))} items, "
              f"0 differences) and has {PRIMARY_REGION}'s heartbeat (lag {heartbeat.get('lag_seconds')} s)")

    def _region_env(self, region: str) -> dict[str, str]:
        """What a region's app and workers run with: the emulator, the region's own access key (so
        the region switch can cut them off from the other region), and the lease length."""
        assert self.emulator is not None
        env = {**self.emulator.env(region), "AWS_ACCESS_KEY_ID": caller_key(region), "AWS_XRAY_SDK_ENABLED": "false"}
        if self.lease_seconds is not None:
            env[ENV_LEASE_SECONDS] = f"{self.lease_seconds:g}"
        return env

    def _create_global_endpoint(self) -> None:
        """The hosted zone, and each region's health check and failover record (dr/regional.yaml)."""
        assert self.emulator is not None
        route53 = self.emulator.route53()
        zone = route53.create_hosted_zone(Name=HOSTED_ZONE + ".", CallerReference=f"local-{time.time()}")
        zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
        for region in (PRIMARY_REGION, DR_REGION):
            apply_global_endpoint(self.emulator, region, STAGE, zone_id, GLOBAL_DOMAIN, PRIMARY_REGION)
        _step(f"created the global endpoint {GLOBAL_DOMAIN}: a Route 53 failover record per region "
              f"(PRIMARY {PRIMARY_REGION}, SECONDARY {DR_REGION}), each with a health check on /health")

    def _start_global_api(self) -> None:
        assert self.emulator is not None
        route53 = self.emulator.route53()
        stage = load_template(REGIONAL_TEMPLATE)["Parameters"]["ApiStage"]["Default"]
        self.global_api = GlobalApi(self.global_port, lambda: global_endpoint.find(route53, STAGE),
                                    {PRIMARY_REGION: self.primary_url, DR_REGION: self.standby_url}, stage,
                                    self.endpoint_check_every)
        self.global_api.start()
        _step(f"serving {GLOBAL_DOMAIN} as the Global API on {self.global_url}: it forwards to the region its "
              f"records and health checks choose ({self.global_api.region} now)")

    def _start_app(self, region: str, stage: str, port: int) -> subprocess.Popen[bytes]:
        env = lifeline.child_env({**clean_env(), **self._region_env(region)})
        log = open(self.log_dir / f"app-{region}.log", "ab")
        return subprocess.Popen(  # `chalice local`, as a child that dies with this process
            lifeline.command("chalice.cli:main", "local", "--stage", stage, "--host", "127.0.0.1", "--port",
                             str(port), "--no-autoreload"),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _run_command(self, module: str, args: list[str], log: Path) -> None:
        """`python -m <module> <args>` against the emulator, as a user runs it against AWS."""
        assert self.emulator is not None
        with open(log, "ab") as out:
            result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                                    env={**clean_env(), **self.emulator.env(PRIMARY_REGION)}, stdout=out,
                                    stderr=subprocess.STDOUT)
        if result.returncode != 0:
            raise RuntimeError(f"python -m {module} {' '.join(args)} failed; see {log}")

    def _sync_webhook_secrets(self) -> None:
        """What an operator runs after deploying both regions (docs/deploying.md)."""
        self._run_command("dr", ["sync-secrets", "--stage", STAGE], self.log_dir / "secrets.log")

    def _deploy_monitoring(self) -> None:
        """The alarms and dashboards, with the command a user runs against AWS; then the alarms
        moto's CloudFormation skips, from the same template and parameters."""
        assert self.emulator is not None
        log = self.log_dir / "monitoring.log"
        _step(f"deploying the alarms and dashboards: python -m dashboards deploy --stage {STAGE} (log: {log})")
        self._run_command("dashboards", ["deploy", "--stage", STAGE], log)
        for region in (PRIMARY_REGION, DR_REGION):
            apply_monitoring_stack_alarms(self.emulator, region, STAGE)

    def _start_alert_console(self) -> None:
        assert self.emulator is not None
        emulator = self.emulator
        inboxes = {region: Inbox(emulator.sqs(region), emulator.sns(region),
                                 self.outputs[region]["AlertTopicArn"], QUEUE_NAME.format(stage=STAGE))
                   for region in (PRIMARY_REGION, DR_REGION)}
        _step("alert e-mails are printed here: an SQS queue is subscribed to each region's alert topic")
        self.console = AlertConsole(inboxes)
        self.console.start()

    def _start_metrics_forwarder(self) -> None:
        assert self.emulator is not None
        emulator = self.emulator
        logs = {self.log_dir / f"{kind}-{region}.log": region
                for kind in ("app", "workers") for region in (PRIMARY_REGION, DR_REGION)}
        self.forwarder = EmfForwarder(logs, emulator.cloudwatch)
        self.forwarder.start()

    def _worker_env(self, region: str) -> dict[str, str]:
        assert self.emulator is not None
        url = self.primary_url if region == PRIMARY_REGION else self.standby_url
        return {**self._region_env(region), "APP_STAGE": STAGE,
                "TABLE_NAME": self.outputs[region]["TableName"], "HEALTH_CHECK_URL": url,
                "ALERT_TOPIC_ARN": self.outputs[region]["AlertTopicArn"]}

    def _worker_args(self, region: str) -> list[str]:
        return ["--region", region, "--stream-arn", self.outputs[region]["TableStreamArn"]]

    def _start_workers(self, region: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"workers-{region}.log", "ab")
        return subprocess.Popen(
            lifeline.command("local.workers", *self._worker_args(region), "--sweep-every", str(self.sweep_every),
                             "--health-every", str(self.health_every), *self._lease_every()),
            cwd=ROOT, env=lifeline.child_env({**clean_env(), **self._worker_env(region)}), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _lease_every(self) -> list[str]:
        """A shortened lease is renewed 3 times per lease, as AWS renews the 150 s one (every 60 s)
        before it can run out; the workers' default (20 s) fits leases of 60 s and more."""
        if self.lease_seconds is None or self.lease_seconds >= 60:
            return []
        return ["--lease-every", f"{self.lease_seconds / 3:g}"]

    def _wait_healthy(self, region: str, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.apps[region].poll() is not None:
                raise RuntimeError(f"the {region} app exited; see {self.log_dir / f'app-{region}.log'}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the {region} app did not become healthy at {url} within {timeout:.0f} s")

    def stop(self) -> None:
        """Everything stops: the children are asked (SIGTERM) together and killed after STOP_WITHIN."""
        self.state_file.unlink(missing_ok=True)
        processes = [*self.workers.values(), *self.apps.values()]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for thread in (self.console, self.forwarder):
            if thread is not None:
                thread.stop()
        deadline = time.monotonic() + STOP_WITHIN
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.global_api is not None:
            self.global_api.stop()
        if self.switch is not None:
            self.switch.shutdown()
            self.switch.server_close()
        if self.backend is not None:
            self.backend.stop()

    def _webhook_lines(self) -> str:
        return "\n".join(f"  {source:<10} {self.global_url}/webhooks/{source:<10}  secret "
                         f"{names.webhook_secret(STAGE, source)}" for source in WEBHOOK_SOURCES)

    def banner(self) -> str:
        assert self.emulator is not None
        table = self.outputs[PRIMARY_REGION]["TableName"]
        endpoint = self.emulator.endpoint
        return f"""
DevOps Metrics is running locally.

  Global API   ({GLOBAL_DOMAIN})  {self.global_url}   (follows the active region: use this one)
  Primary API  ({PRIMARY_REGION}, active)        {self.primary_url}
  Standby API  ({DR_REGION}, standby)       {self.standby_url}
  AWS emulator (moto, all regions)        {endpoint}
  Table (both regions)                    {table}
  Alert topic ({PRIMARY_REGION})                 {self.outputs[PRIMARY_REGION]['AlertTopicArn']}

Try it (the Global API answers from the active region, named in its X-Served-By-Region header):
  curl -si {self.global_url}/health
  curl -s -X POST {self.global_url}/metrics -H 'Content-Type: application/json' \\
       -d '{{"kind": "deployment", "service": "checkout", "status": "success", "id": "my-first-deploy"}}'
  curl -s '{self.global_url}/metrics?service=checkout&kind=deployment&limit=5'
  curl -s '{self.global_url}/metrics/summary?service=checkout&days=30'
  curl -s -X POST {self.standby_url}/metrics -H 'Content-Type: application/json' \\
       -d '{{"kind": "build", "service": "checkout", "status": "succeeded"}}'   # 503: the standby is read-only

Webhooks (docs/webhooks.md): public URLs, each delivery signed with its source's secret:
{self._webhook_lines()}
Read a secret with the aws CLI, and send a signed sample delivery (a fixture from the source's docs):
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url {endpoint} \\
    --region {PRIMARY_REGION} secretsmanager get-secret-value --secret-id {names.webhook_secret(STAGE, "github")} \\
    --query SecretString --output text
  .venv/bin/python -m local send-webhook github \\
    tests/fixtures/webhooks/github/deployment_status.created.success.json --recent

Replication runs live: a stream poller per region feeds the app's stream handler, and the
replication sweep runs every {self.sweep_every:g} s. DR operations (dr/RUNBOOK.md):
  AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
    .venv/bin/python -m dr status

Take a region away (its AWS endpoint stops answering), or cut the regions off from each other
(a partition: clients and the operator still reach both), and bring it back:
  curl -s -X POST {endpoint}/_outage/us-east-1
  curl -s -X DELETE {endpoint}/_outage/us-east-1
  curl -s -X POST {endpoint}/_outage/partition
  curl -s -X DELETE {endpoint}/_outage/partition
A whole game day (write load through the Global API, outage, failover, failback, with detection
time, RTO and RPO; --scenario partition and --scenario crash for the others):
  AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
    .venv/bin/python -m dr drill

Inspect the emulated AWS with the aws CLI or boto3 (any credentials work):
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
    aws --endpoint-url {endpoint} --region {PRIMARY_REGION} dynamodb scan --table-name {table} --max-items 5

Monitoring (docs/monitoring.md): the health check runs in each region every
{self.health_every:g} s (AWS: every 300 s); alerts are printed here as the e-mail would read. Make the
primary's table unavailable, run the health check now, and bring the table back:
  curl -s -X POST {endpoint}/_outage/us-east-1/dynamodb
  .venv/bin/python -m local run health_check --region us-east-1
  curl -s -X DELETE {endpoint}/_outage/us-east-1/dynamodb
Metrics go to the emulator's CloudWatch, as Lambda's logs would send them; the alarms and the
dashboards (devops-metrics-dev-overview, -replication, -health, -dora, -pipeline) are there too:
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
    aws --endpoint-url {endpoint} --region {PRIMARY_REGION} cloudwatch list-metrics --namespace DevOpsMetrics
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\
    aws --endpoint-url {endpoint} --region {PRIMARY_REGION} cloudwatch describe-alarms \\
      --query 'MetricAlarms[].AlarmName'

Logs are in {self.log_dir}/. Press Ctrl-C to stop.
"""


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run_once(handler: str, region: str) -> int:
    """Run one scheduled handler of the running stack now, in the region's environment."""
    if not STATE_FILE.exists():
        print("error: the local stack is not running; start it with: make up", file=sys.stderr)
        return 1
    worker = json.loads(STATE_FILE.read_text())[region]
    process = subprocess.Popen([sys.executable, "-m", "local.workers", *worker["args"], "--once", handler],
                               cwd=ROOT, env={**clean_env(), **worker["env"]}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    # Into the region's worker log too, as a Lambda run's output goes to its log group: the metrics
    # forwarder reads its EMF lines from there.
    with open(LOG_DIR / f"workers-{region}.log", "a") as log:
        for line in process.stdout:
            print(line, end="", flush=True)
            log.write(line)
    return process.wait()


def send_webhook(argv: list[str]) -> int:
    """python -m local send-webhook SOURCE FILE: a signed delivery to the running stack."""
    from local import webhooks

    parser = argparse.ArgumentParser(prog="python -m local send-webhook", description=webhooks.__doc__)
    parser.add_argument("source", choices=list(WEBHOOK_SOURCES))
    parser.add_argument("file", type=Path, help="a payload, or a fixture of tests/fixtures/webhooks")
    parser.add_argument("--event", help="the event type (X-GitHub-Event, X-Gitlab-Event); a fixture names its own")
    parser.add_argument("--recent", action="store_true",
                        help="move the payload's times so that the latest is now (old examples then show "
                             "in today's summary)")
    parser.add_argument("--query", default="", help="appended to the URL, e.g. '?service=checkout'")
    args = parser.parse_args(argv)
    if not STATE_FILE.exists():
        print("error: the local stack is not running; start it with: make up", file=sys.stderr)
        return 1
    return webhooks.main(args.source, args.file, args.event, args.recent, args.query,
                         json.loads(STATE_FILE.read_text()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["send-webhook"]:
        return send_webhook(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("command", choices=["up", "run", "send-webhook"],
                        help="up: start the local stack in the foreground; run HANDLER: run a scheduled handler "
                             "of the running stack once, now; send-webhook SOURCE FILE: a signed delivery "
                             "(python -m local send-webhook --help)")
    parser.add_argument("handler", nargs="?", choices=["health_check", "replication_sweep", "publish_dora",
                                                       "readiness_check"],
                        help="with run: the scheduled handler")
    parser.add_argument("--region", default=PRIMARY_REGION, choices=[PRIMARY_REGION, DR_REGION],
                        help="with run: the region whose handler runs (default us-east-1)")
    parser.add_argument("--moto-port", type=int, default=5000, help="port of moto's server (default 5000)")
    parser.add_argument("--port", type=int, default=8000, help="port of the primary API (default 8000)")
    parser.add_argument("--standby-port", type=int, default=8001, help="port of the standby API (default 8001)")
    parser.add_argument("--global-port", type=int, default=8002,
                        help="port of the Global API, which follows the active region (default 8002)")
    parser.add_argument("--endpoint-check-every", type=float,
                        help="seconds between the Global API's health checks of each region (default: their "
                             "RequestInterval in dr/regional.yaml, 10)")
    parser.add_argument("--lease-seconds", type=float,
                        help="the active region's write lease (default: the app's, 150); drills shorten it")
    parser.add_argument("--no-demo-data", action="store_true", help="start with empty tables")
    parser.add_argument("--sweep-every", type=float, default=60.0,
                        help="seconds between replication sweeps (default 60; AWS runs them every 300)")
    parser.add_argument("--health-every", type=float, default=60.0,
                        help="seconds between health checks (default 60; AWS runs them every 300)")
    args = parser.parse_args(argv)
    if args.command == "run":
        if not args.handler:
            parser.error("run needs a handler: health_check, replication_sweep, publish_dora or readiness_check")
        return run_once(args.handler, args.region)
    stack = LocalStack(args.moto_port, args.port, args.standby_port, args.global_port,
                       demo_data=not args.no_demo_data, sweep_every=args.sweep_every, health_every=args.health_every,
                       endpoint_check_every=args.endpoint_check_every, lease_seconds=args.lease_seconds)

    def _terminate(signum: int, frame: FrameType | None) -> None:
        # The first SIGINT or SIGTERM stops the stack; those after it must not abort the stop half-way
        # (make passes its own SIGTERM on, and an impatient user presses Ctrl-C twice).
        _ignore_stop_signals()
        raise KeyboardInterrupt

    # A shell starts a background job with SIGINT ignored, and Python then leaves it ignored: the
    # stack started that way (nohup, `&`, a CI step) would outlive the SIGINT meant to stop it.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    try:
        clear_leftovers((args.moto_port, args.port, args.standby_port, args.global_port))
        stack.start()
        print(stack.banner(), flush=True)
        while all(p.poll() is None for p in [*stack.apps.values(), *stack.workers.values()]):
            time.sleep(0.5)
        _step("an app or worker process exited; stopping (see the logs in .local-stack/)")
        return 1
    except KeyboardInterrupt:
        _step("stopping")
        return 0
    except Exception as error:  # noqa: BLE001 - a start-up failure is reported, then everything stops
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        _ignore_stop_signals()
        stack.stop()
        _step("stopped")


def _ignore_stop_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def clear_leftovers(ports: tuple[int, ...]) -> None:
    """Stop what an earlier run left behind, naming each process, and refuse to start on a port
    another process holds, naming it and saying how to stop it."""
    found = lifeline.leftovers()
    for leftover in found:
        _step(f"stopping a leftover of an earlier run: {leftover.describe()}")
    survivors = lifeline.stop(found) if found else []
    if survivors:
        raise RuntimeError("these leftovers did not stop: " + "; ".join(s.describe() for s in survivors)
                           + "; stop them with: kill -9 " + " ".join(str(s.pid) for s in survivors))
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                holder = lifeline.holder_of(port)
                who = f"by {holder}" if holder else "by another process (find it with: lsof -i :" + str(port) + ")"
                how = f"; stop it with: kill {holder.split()[1]}" if holder else ""
                raise RuntimeError(f"port {port} is in use {who}{how}; or start on other ports "
                                   f"(--moto-port, --port, --standby-port, --global-port)") from None

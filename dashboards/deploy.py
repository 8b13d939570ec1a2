"""python -m dashboards: the alarms and dashboards of one stage, in both regions.

  deploy --stage STAGE   in us-east-1 (chalice stage STAGE) and us-west-2 (STAGE-dr):
                           1. read the regional stack devops-metrics-STAGE for its AlertTopicArn;
                           2. create or update the stack devops-metrics-STAGE-monitoring from
                              dashboards/alarms.yaml, with the stage's thresholds;
                           3. subscribe the stage's alert_emails to the topic (idempotent);
                           4. put the dashboards devops-metrics-<chalice stage>-<topic>.
  render --stage STAGE --region REGION   print that region's dashboard bodies as JSON
  report (--service S | --team T) [--weeks 12] [--url URL] --out FILE.html
                         a self-contained HTML report of DORA's metrics, read from the API
                         (the local stack's by default; a deployed stage's URL is signed with SigV4)

Thresholds and e-mail addresses are set in dashboards/stages.json, and only there. Each address
must confirm the subscription e-mail AWS sends before alerts reach it. --endpoint-url (or
AWS_ENDPOINT_URL) points everything at an AWS emulator instead of AWS. Exit codes: 0 done, 1 failed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from tabulate import tabulate

from chalicelib import constants as C
from chalicelib import names
from chalicelib.aws_errors import AWS_ERRORS, first_line, is_missing_stack
from dashboards import bodies as B
from dashboards import template as T
from dashboards.references import STAGES_FILE, alarm_parameters, load_stages
from dashboards.report import write_report
from ops.api import Api, ApiError
from ops.regions import Regions
from ops.stacks import deploy_stack

OK, FAILED = 0, 1
FIXED_PARAMETERS = ("Stage", "ChaliceStage", "AlertTopicArn")  # the rest are thresholds, from stages.json
PENDING = "PendingConfirmation"  # SNS's SubscriptionArn for an address that has not confirmed yet
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_stages(stages: Mapping[str, Any]) -> list[str]:
    """Problems with a stages file: every stage needs a list of addresses and every threshold."""
    wanted = set(T.load()["Parameters"]) - set(FIXED_PARAMETERS)
    problems = []
    for stage, settings in stages.items():
        emails = settings.get("alert_emails")
        if not isinstance(emails, list) or not all(isinstance(e, str) and _EMAIL.match(e) for e in emails):
            problems.append(f"{stage}: alert_emails must be a list of e-mail addresses")
        thresholds = settings.get("thresholds", {})
        if set(thresholds) != wanted:
            problems.append(f"{stage}: thresholds must be exactly {sorted(wanted)}")
        elif not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in thresholds.values()):
            problems.append(f"{stage}: thresholds must be non-negative numbers")
    return problems


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # region, kind, name, result

    def add(self, region: str, kind: str, name: str, result: str) -> None:
        self.rows.append((region, kind, name, result))
        print(f"  {region} {kind} {name}: {result}", file=sys.stderr, flush=True)

    def table(self) -> str:
        return str(tabulate(self.rows, headers=["region", "what", "name", "result"]))


class RegionDeployer:
    """One region's share of a deploy."""

    def __init__(self, regions: Regions, region: str, report: Report) -> None:
        self.regions, self.stage, self.region, self.report = regions, regions.stage, region, report
        self.chalice_stage = names.chalice_stage(self.stage, region)

    def alert_topic_arn(self) -> str:
        name = names.stack(self.stage, "regional")
        try:
            outputs = self.regions.regional_outputs(self.region)
        except AWS_ERRORS as error:
            if is_missing_stack(error):
                raise SystemExit(f"error: the regional stack {name} is not in {self.region}; deploy dr/regional.yaml "
                                 f"there first (see docs/deploying.md)") from None
            raise
        if "AlertTopicArn" not in outputs:
            raise SystemExit(f"error: {name} in {self.region} has no AlertTopicArn output")
        self.report.add(self.region, "topic", outputs["AlertTopicArn"], "read from " + name)
        return outputs["AlertTopicArn"]

    def deploy_stack(self, parameters: Mapping[str, str]) -> str:
        """Create or update the monitoring stack and wait; returns created, updated or up to date."""
        return deploy_stack(self.regions.cloudformation(self.region), self.region,
                            names.stack(self.stage, "monitoring"), T.ALARMS_TEMPLATE, parameters,
                            tags={"stage": self.stage}, max_attempts=120)

    def subscribe(self, topic_arn: str, emails: list[str]) -> None:
        """Subscribe each address once: an address already listed (confirmed or pending) is left alone,
        so a re-run does not send another confirmation e-mail."""
        sns = self.regions.sns(self.region)
        existing: dict[str, str] = {}
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for sub in page["Subscriptions"]:
                if sub["Protocol"] == "email":
                    existing[sub["Endpoint"].lower()] = sub["SubscriptionArn"]
        for email in emails:
            if email.lower() in existing:
                state = "pending confirmation" if existing[email.lower()] == PENDING else "subscribed"
                self.report.add(self.region, "e-mail", email, f"already {state}")
                continue
            arn = sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email)["SubscriptionArn"]
            self.report.add(self.region, "e-mail", email, "subscribed" if arn.startswith("arn:")
                            else "subscribed, confirmation e-mail sent")
        for endpoint in sorted(set(existing) - {e.lower() for e in emails}):
            # Someone subscribed it by hand: say so, but do not cut anyone off alerts.
            self.report.add(self.region, "e-mail", endpoint, "not in stages.json (left alone)")

    def put_dashboards(self) -> None:
        cloudwatch = self.regions.cloudwatch(self.region)
        for name, body in B.bodies(self.stage, self.chalice_stage, self.region, names.peer_region(self.region)).items():
            answer = cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
            messages = answer.get("DashboardValidationMessages", [])
            for message in messages:
                print(f"  {self.region} {name}: {message.get('DataPath', '')} {message.get('Message', '')}",
                      file=sys.stderr)
            self.report.add(self.region, "dashboard", name, f"put, {len(messages)} warning(s)" if messages else "put")

    def run(self, stages: Mapping[str, Any]) -> None:
        topic_arn = self.alert_topic_arn()
        parameters = alarm_parameters(self.stage, self.chalice_stage, topic_arn, stages)
        self.report.add(self.region, "stack", names.stack(self.stage, "monitoring"), self.deploy_stack(parameters))
        self.subscribe(topic_arn, list(stages[self.stage]["alert_emails"]))
        self.put_dashboards()


def deploy(stage: str, stages_file: Path = STAGES_FILE, endpoint_url: str | None = None) -> Report:
    stages = load_stages(stages_file)
    problems = validate_stages(stages)
    if problems:
        raise SystemExit(f"error: {stages_file}: " + "; ".join(problems))
    if stage not in stages:
        raise SystemExit(f"error: stage {stage!r} is not in {stages_file} (it has {', '.join(sorted(stages))})")
    report = Report()
    regions = Regions(stage, endpoint_url)
    for region in C.REGIONS:
        RegionDeployer(regions, region, report).run(stages)
    return report


def console_url(region: str, name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards/dashboard/{name}"


def cmd_deploy(args: argparse.Namespace) -> int:
    print(f"Deploying the {names.table(args.stage)} alarms and dashboards to {' and '.join(C.REGIONS)}",
          file=sys.stderr)
    report = deploy(args.stage, args.stages_file, args.endpoint_url)
    print(report.table())
    if not Regions(args.stage, args.endpoint_url).endpoint_url:  # AWS, not an emulator: the console has them
        print("\nDashboards:")
        for region, chalice_stage in names.chalice_stages(args.stage).items():
            print(f"  {console_url(region, names.dashboard(chalice_stage, 'overview'))}")
    if any(row[3].endswith("confirmation e-mail sent") for row in report.rows):
        print("\nEach new address must confirm the subscription e-mail before alerts reach it.")
    if not load_stages(args.stages_file)[args.stage]["alert_emails"]:
        print(f"\nwarning: no alert_emails for {args.stage} in {args.stages_file}: alerts reach nobody by e-mail "
              "until you add an address and deploy again.", file=sys.stderr)
    return OK


def cmd_render(args: argparse.Namespace) -> int:
    chalice_stage = names.chalice_stage(args.stage, args.region)
    print(json.dumps(B.bodies(args.stage, chalice_stage, args.region, names.peer_region(args.region)), indent=2))
    return OK


LOCAL_API = "http://127.0.0.1:8000"  # the local stack's primary (make up)


def cmd_report(args: argparse.Namespace) -> int:
    who = {"team": args.team} if args.team else {"service": args.service}
    try:
        out = write_report(Api(args.url, region=args.region), who, args.out, args.weeks, args.environment)
    except (ApiError, requests.RequestException) as error:
        print(f"error: {first_line(error)}", file=sys.stderr)
        return FAILED
    print(out)
    return OK


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)
    run = commands.add_parser("deploy", help="alarms, e-mail subscriptions and dashboards in both regions")
    run.add_argument("--stage", required=True, help="table stage, a key of the stages file (dev, prod)")
    run.add_argument("--stages-file", type=Path, default=STAGES_FILE,
                     help="thresholds and alert e-mails per stage (default dashboards/stages.json)")
    run.add_argument("--endpoint-url", help="an AWS emulator's endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    run.set_defaults(run=cmd_deploy)
    render = commands.add_parser("render", help="print one region's dashboard bodies as JSON")
    render.add_argument("--stage", required=True, help="table stage (dev, prod)")
    render.add_argument("--region", choices=C.REGIONS, default=C.PRIMARY_REGION)
    render.set_defaults(run=cmd_render)
    report = commands.add_parser("report", help="a self-contained HTML report of DORA's metrics")
    whose = report.add_mutually_exclusive_group(required=True)
    whose.add_argument("--service")
    whose.add_argument("--team")
    report.add_argument("--weeks", type=int, default=12, choices=range(1, 53), metavar="1-52",
                        help="weeks of trend (default 12)")
    report.add_argument("--environment", default="production")
    report.add_argument("--url", default=LOCAL_API, help=f"the API (default {LOCAL_API}, the local stack)")
    report.add_argument("--region", help="the deployed API's region, for SigV4 (default: from its URL)")
    report.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    report.set_defaults(run=cmd_report)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except AWS_ERRORS as error:
        print(f"error: {first_line(error)}", file=sys.stderr)
        return FAILED

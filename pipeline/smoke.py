"""The smoke test the pipeline runs after each regional deploy, and `make test` against the local stack.

    python -m pipeline.smoke --stage prod --region us-east-1            # the deployed API, SigV4-signed
    python -m pipeline.smoke --endpoint http://127.0.0.1:8000 --peer-endpoint http://127.0.0.1:8001

It asks the region's API for its deep health and its role, then:
- **active**: posts a probe deployment (service `devops-metrics-smoke`, environment `smoke`, an id of
  its own), reads it back by its identity, deletes it, and checks that it is gone;
- **standby**: checks that a post is refused with 503 `standby_region`; then posts the probe through
  the peer (the active region's API), waits until it has been replicated here and reads it back,
  deletes it through the peer, and waits until the delete has been replicated too.

With --stage and --region, the endpoints are the app stacks' `EndpointURL` outputs
(devops-metrics-<stage>-app in us-east-1, devops-metrics-<stage>-dr-app in us-west-2), and every
request is signed with the caller's AWS credentials (the /metrics routes use IAM auth). With
--endpoint the requests go unsigned unless --sign-region is given. Exit status 0 when every check
passed, 1 with the failed check named otherwise.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import requests

from chalicelib import clients, names
from chalicelib import constants as C
from chalicelib.times import format_time

SMOKE_SERVICE = "devops-metrics-smoke"
SMOKE_ENVIRONMENT = "smoke"
TIMEOUT_SECONDS = 15.0  # one request
REPLICATION_WAIT_SECONDS = 120.0  # the standby's copy: the stream carries it in about a second


class SmokeFailed(Exception):
    """A check failed; the message says which and what the API answered."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    text: str


@dataclass
class Api:
    """One region's API: unsigned, or SigV4-signed for execute-api in `sign_region`."""

    base_url: str
    sign_region: str | None = None
    correlation_id: str = field(default_factory=lambda: f"smoke-{uuid.uuid4().hex[:12]}")

    def call(self, method: str, path: str, params: Mapping[str, str] | None = None,
             body: Any = None) -> Answer:
        url = self.base_url.rstrip("/") + path
        prepared = requests.Request(method, url, params=params, json=body, headers={
            C.CORRELATION_HEADER: self.correlation_id}).prepare()
        if self.sign_region is not None:
            _sign(prepared, self.sign_region)
        try:
            with requests.Session() as session:
                response = session.send(prepared, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise SmokeFailed(f"{method} {url}: no answer ({error})") from error
        try:
            parsed = response.json() if response.content else None
        except ValueError:
            parsed = None
        return Answer(response.status_code, parsed, response.text[:500])


def _sign(prepared: requests.PreparedRequest, region: str) -> None:
    """SigV4 for execute-api, with the credentials boto3 finds (environment, profile, CodeBuild role)."""
    import boto3  # the pipeline's CodeBuild image and the dev environment have it; the Lambda package does not
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise SmokeFailed("no AWS credentials to sign the requests with")
    request = AWSRequest(method=prepared.method, url=prepared.url, data=prepared.body,
                         headers={k: v for k, v in prepared.headers.items() if k.lower() != "connection"})
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
    prepared.headers.update(dict(request.headers.items()))


def probe_event(run_id: str, now: datetime) -> dict[str, Any]:
    """The synthetic deployment: a service and an environment of its own, so no real metric includes it."""
    stamp = format_time(now)
    return {"kind": "deployment", "service": SMOKE_SERVICE, "environment": SMOKE_ENVIRONMENT,
            "id": f"smoke-{run_id}", "status": "success", "timestamp": stamp, "pipeline": "smoke-test",
            "commits": [{"sha": "0000000", "timestamp": stamp}]}


@dataclass
class Smoke:
    """The checks against one region (`api`), with the active region's API (`peer`) for a standby."""

    api: Api
    peer: Api | None = None
    say: Callable[[str], None] = print
    replication_wait: float = REPLICATION_WAIT_SECONDS
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def run(self) -> str:
        """Every check, in order; returns the region's role. Raises SmokeFailed at the first failure."""
        role = self.health()
        if role == "active":
            self.round_trip()
        else:
            self.refuses_writes()
            if self.peer is None:
                self.say("skip replicated probe: no --peer-endpoint (the active region's API) given")
            else:
                self.replicated_round_trip(self.peer)
        return role

    # -- the checks --------------------------------------------------------------------------------

    def health(self) -> str:
        answer = self.api.call("GET", "/health", {"deep": "true"})
        body = answer.body if isinstance(answer.body, dict) else {}
        self._expect(answer.status == 200 and body.get("status") == "ok", "GET /health?deep=true", answer,
                     "200 with status ok")
        role = str(body.get("role"))
        self._expect(role in ("active", "standby"), "GET /health?deep=true", answer, "a role, active or standby")
        self.say(f"ok   GET /health?deep=true: 200, {body.get('region')} is {role}, version {body.get('version')}")
        return role

    def round_trip(self) -> None:
        event = self.post(self.api)
        self.read(self.api, event, f"GET {self._path(event)}")
        self.delete(self.api, event)
        gone = self.api.call("GET", self._path(event), self._identity())
        self._expect(gone.status == 404, f"GET {self._path(event)} after the delete", gone, "404")
        self.say(f"ok   GET {self._path(event)} after the delete: 404")

    def refuses_writes(self) -> None:
        event = probe_event(self.run_id, datetime.now(timezone.utc))
        answer = self.api.call("POST", "/metrics", body=event)
        code = answer.body.get("error", {}).get("code") if isinstance(answer.body, dict) else None
        self._expect(answer.status == 503 and code == "standby_region", "POST /metrics to the standby", answer,
                     "503 standby_region")
        self.say("ok   POST /metrics to the standby: 503 standby_region")

    def replicated_round_trip(self, peer: Api) -> None:
        event = self.post(peer)
        self.wait_for(lambda: self.api.call("GET", self._path(event), self._identity()), 200,
                      f"GET {self._path(event)} (the probe, replicated)")
        self.read(self.api, event, f"GET {self._path(event)} (the probe, replicated)")
        self.delete(peer, event)
        self.wait_for(lambda: self.api.call("GET", self._path(event), self._identity()), 404,
                      f"GET {self._path(event)} (the delete, replicated)")
        self.say(f"ok   GET {self._path(event)} (the delete, replicated): 404")

    # -- steps ---------------------------------------------------------------------------------------

    def post(self, api: Api) -> dict[str, Any]:
        event = probe_event(self.run_id, datetime.now(timezone.utc))
        answer = api.call("POST", "/metrics", body=event)
        ids = answer.body.get("ids") if isinstance(answer.body, dict) else None
        self._expect(answer.status == 201 and ids == [event["id"]], f"POST /metrics to {api.base_url}", answer,
                     f"201 with ids [{event['id']}]")
        self.say(f"ok   POST /metrics to {api.base_url}: 201, probe {event['id']}")
        return event

    def read(self, api: Api, event: dict[str, Any], what: str) -> None:
        answer = api.call("GET", self._path(event), self._identity())
        body = answer.body if isinstance(answer.body, dict) else {}
        same = {k: body.get(k) for k in ("kind", "id", "service", "environment", "status")} == {
            k: event[k] for k in ("kind", "id", "service", "environment", "status")}
        self._expect(answer.status == 200 and same, what, answer, "200 with the probe as posted")
        self.say(f"ok   {what}: 200, the probe as posted")

    def delete(self, api: Api, event: dict[str, Any]) -> None:
        answer = api.call("DELETE", self._path(event), self._identity())
        self._expect(answer.status == 204, f"DELETE {self._path(event)} at {api.base_url}", answer, "204")
        self.say(f"ok   DELETE {self._path(event)} at {api.base_url}: 204")

    def wait_for(self, ask: Callable[[], Answer], status: int, what: str) -> None:
        deadline = time.monotonic() + self.replication_wait
        while True:
            answer = ask()
            if answer.status == status:
                return
            if time.monotonic() > deadline:
                self._expect(False, what, answer, f"{status} within {self.replication_wait:.0f} s")
            time.sleep(0.5)

    # -- helpers -------------------------------------------------------------------------------------

    def _path(self, event: dict[str, Any]) -> str:
        return f"/metrics/{event['kind']}/{event['id']}"

    @staticmethod
    def _identity() -> dict[str, str]:
        return {"service": SMOKE_SERVICE, "environment": SMOKE_ENVIRONMENT}

    @staticmethod
    def _expect(condition: bool, what: str, answer: Answer, wanted: str) -> None:
        if not condition:
            raise SmokeFailed(f"{what}: expected {wanted}, got {answer.status} {answer.text}")


def stack_endpoint(stage: str, region: str) -> str:
    """The EndpointURL output of the app stack the pipeline deploys in `region`."""
    from botocore.exceptions import BotoCoreError, ClientError

    stack = names.app_stack(stage, region)
    try:
        described = clients.cloudformation(region, "operator").describe_stacks(StackName=stack)
    except (BotoCoreError, ClientError) as error:
        raise SmokeFailed(f"the app stack {stack} in {region} could not be read: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
    if "EndpointURL" not in outputs:
        raise SmokeFailed(f"the stack {stack} in {region} has no EndpointURL output")
    return str(outputs["EndpointURL"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.smoke", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["dev", "prod"], help="the pipeline's stage: endpoints from its app stacks")
    parser.add_argument("--region", choices=list(C.REGIONS), help="with --stage: the region to check")
    parser.add_argument("--endpoint", help="the API to check, instead of --stage and --region")
    parser.add_argument("--peer-endpoint", help="with --endpoint: the other region's API")
    parser.add_argument("--sign-region", help="with --endpoint: sign requests for execute-api in this region")
    parser.add_argument("--replication-wait", type=float, default=REPLICATION_WAIT_SECONDS,
                        help=f"seconds to wait for the standby's copy (default {REPLICATION_WAIT_SECONDS:.0f})")
    args = parser.parse_args(argv)
    try:
        if args.endpoint:
            api = Api(args.endpoint, args.sign_region)
            peer = Api(args.peer_endpoint, args.sign_region) if args.peer_endpoint else None
        elif args.stage and args.region:
            other = C.DR_REGION if args.region == C.PRIMARY_REGION else C.PRIMARY_REGION
            api = Api(stack_endpoint(args.stage, args.region), args.region)
            peer = Api(stack_endpoint(args.stage, other), other)
        else:
            parser.error("give --stage and --region, or --endpoint")
        print(f"Smoke test of {api.base_url} (correlation id {api.correlation_id})")
        role = Smoke(api, peer, replication_wait=args.replication_wait).run()
    except SmokeFailed as failed:
        print(f"FAIL {failed}", file=sys.stderr)
        return 1
    print(f"Passed: the {role} region answers as it should.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

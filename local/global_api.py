"""The Global API: the local stand-in for the global endpoint's DNS name (docs/dr.md#the-global-endpoint).

In AWS, Route 53 answers the name with the region its failover records and their health checks
choose, and the client then calls that region's API. Here one HTTP server does both: every request
goes to the region that the emulator's records (chalicelib.global_endpoint) and the health checks'
verdicts choose, by Route 53's rule, and the answer carries `X-Served-By-Region`.

Each region's health check runs as its configuration in the emulator says: its path (without the API
Gateway stage, which `chalice local` does not have), its search string, its failure threshold, every
RequestInterval seconds (or `check_every`). The records and checks are read again on each round, so
an edit in the emulator is followed; while Route 53's API cannot be reached (it is in us-east-1),
the ones last read still apply, as Route 53's DNS servers and checkers keep them. No resolver caches
the answer (the record's TTL, which a client in AWS waits out as well, is not modelled). A region
whose app does not answer gets its connection dropped, as a client whose DNS answer names a dead
endpoint sees it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import requests

from chalicelib import global_endpoint as ge
from chalicelib.aws_errors import AWS_ERRORS
from chalicelib.logs import log_event
from local.proxy import RelayHandler, RelayServer, UpstreamError, drop, read_body, relay

SERVED_BY_HEADER = ge.SERVED_BY_HEADER


class GlobalApi(RelayServer):
    thread_name = "global-api"

    def __init__(self, port: int, find: Callable[[], ge.GlobalEndpoint | None], origins: Mapping[str, str],
                 api_stage: str, check_every: float | None = None) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.find, self.origins, self.api_stage, self.check_every = find, dict(origins), api_stage, check_every
        self.states: dict[str, ge.HealthState] = {}
        self.records: dict[str, ge.FailoverRecord] = {}
        self.region: str | None = None
        self.endpoint: ge.GlobalEndpoint | None = None
        self._interval = 10.0
        self._stop = threading.Event()
        self._checker: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def check_once(self) -> str | None:
        """One round of every region's health check; returns the region the name now answers with."""
        try:
            endpoint = self.find()
        except AWS_ERRORS as error:
            # Route 53's API (its control plane) is in us-east-1, and goes when us-east-1 goes; its
            # DNS answers and health checkers (the data plane) keep the records and checks they had.
            if self.endpoint is None:
                raise
            log_event("WARNING", "Route 53's API is unreachable: routing by the records and checks last read",
                      worker="global-api", error=str(error))
            endpoint = self.endpoint
        self.endpoint = endpoint
        if endpoint is None:
            self.region = None
            return None
        healthy: dict[str, bool] = {}
        for region, check in endpoint.health_checks.items():
            state = self.states.get(region)
            if state is None or state.threshold != check.failure_threshold:
                state = self.states[region] = ge.HealthState(check.failure_threshold)
            healthy[region] = state.observe(self._probe(region, check))
        self.records = dict(endpoint.records)
        self._interval = float(min((c.interval for c in endpoint.health_checks.values()), default=10))
        chosen = ge.route(self.records, healthy)
        if chosen != self.region:
            log_event("INFO", "the global name now answers with another region", worker="global-api",
                      region=chosen, previous=self.region, healthy=healthy)
        self.region = chosen
        return chosen

    def _probe(self, region: str, check: ge.HealthCheck) -> bool:
        origin = self.origins.get(region)
        if origin is None:
            return False
        path = check.path.removeprefix(f"/{self.api_stage}") or "/"
        try:
            answer = requests.get(origin + path, timeout=min(4.0, check.interval))
        except requests.RequestException:
            return False
        return check.passes(answer.status_code, answer.content)

    def interval(self) -> float:
        return self.check_every if self.check_every is not None else self._interval

    def start(self) -> threading.Thread:
        self.check_once()

        def run() -> None:
            while not self._stop.wait(self.interval()):
                try:
                    self.check_once()
                except Exception as error:  # noqa: BLE001 - the emulator may be stopping; the next round retries
                    log_event("WARNING", "health check round failed", worker="global-api", error=str(error))

        self._checker = threading.Thread(target=run, name="global-api-checks", daemon=True)
        self._checker.start()
        return super().start()

    def stop(self) -> None:
        self._stop.set()
        self.shutdown()
        self.server_close()


class _Handler(RelayHandler):
    server: GlobalApi

    def log_message(self, *_: object) -> None:  # quiet: each app logs its own requests
        pass

    def _forward(self) -> None:
        body = read_body(self)
        region = self.server.region
        origin = urlsplit(self.server.origins[region]) if region in self.server.origins else None
        if region is None or origin is None:
            drop(self)
            return
        try:
            relay(self, origin.hostname or "127.0.0.1", origin.port or 80, body, {SERVED_BY_HEADER: region},
                  timeout=30)
        except UpstreamError:  # the chosen region's app does not answer: neither does the name
            drop(self)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

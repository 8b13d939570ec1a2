"""A region switch in front of the emulator: forwards every AWS request to moto's server, except
those it has been told to drop, whose connection it closes unanswered, as an unreachable regional
endpoint does. Everything in the local stack talks to AWS through it.

Each request says which region it is for (its SigV4 credential scope) and who sends it: the
access key id. The local stack gives each region's app and workers the key `app-<region>`
(`caller_key`); the operator's commands and the tests use any other.

    POST   /_outage/us-east-1            take us-east-1 away from everyone
    POST   /_outage/us-east-1/dynamodb   take only DynamoDB in us-east-1 away (the table is unavailable)
    POST   /_outage/us-east-1?from=KEY   take us-east-1 away from the callers with that access key only
                                         (an operator who cannot reach the region, while clients can)
    POST   /_outage/partition            cut the regions off from each other: each region's app and
                                         workers lose the other region; clients and the operator
                                         still reach both
    DELETE /_outage/...                  the same paths: bring it back
    GET    /_outage                      what is away (JSON list)
"""
from __future__ import annotations

import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from local.proxy import RelayHandler, RelayServer, drop, read_body, relay, reply

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
PARTITION = "partition"
_APP_KEY_PREFIX = "app-"


def caller_key(region: str) -> str:
    """The access key id of a region's app and workers: how the switch knows who calls."""
    return f"{_APP_KEY_PREFIX}{region}"


class RegionSwitch(RelayServer):
    thread_name = "region-switch"

    def __init__(self, port: int, upstream: str) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        target = urlsplit(upstream)
        self.upstream_host, self.upstream_port = target.hostname or "127.0.0.1", target.port or 80
        self.down: set[str] = set()
        self._lock = threading.Lock()

    def set_down(self, scope: str, down: bool) -> None:
        with self._lock:
            (self.down.add if down else self.down.discard)(scope)

    def drops(self, key: str, region: str, service: str) -> bool:
        """Whether a request signed with `key` for `service` in `region` goes unanswered."""
        down = self.down
        if region in down or f"{region}/{service}" in down or f"{region} from {key}" in down:
            return True
        caller = key.removeprefix(_APP_KEY_PREFIX) if key.startswith(_APP_KEY_PREFIX) else None
        return PARTITION in down and caller is not None and caller != region


class _Handler(RelayHandler):
    server: RegionSwitch

    def log_message(self, *_: object) -> None:  # quiet: moto's own log has every request
        pass

    def _control(self) -> bool:
        url = urlsplit(self.path)
        if not url.path.startswith("/_outage"):
            return False
        scope = url.path.removeprefix("/_outage").strip("/")
        callers = parse_qs(url.query).get("from")
        if callers:
            scope = f"{scope} from {callers[0]}"
        if self.command in ("POST", "DELETE") and scope:
            self.server.set_down(scope, self.command == "POST")
        reply(self, 200, json.dumps(sorted(self.server.down)).encode())
        return True

    def _forward(self) -> None:
        if self._control():
            return
        body = read_body(self)
        signed = _CREDENTIAL.search(self.headers.get("Authorization", ""))
        if signed and self.server.drops(*signed.groups()):
            drop(self)  # the region is unreachable: no answer at all
            return
        relay(self, self.server.upstream_host, self.server.upstream_port, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

"""A region switch in front of the emulator: forwards every AWS request to moto's server, except
those signed for a region (or one service of a region) that has been "taken away", which get their
connection dropped, as an unreachable regional endpoint does. Everything in the local stack talks to
AWS through it.

    POST   /_outage/us-east-1            take us-east-1 away
    POST   /_outage/us-east-1/dynamodb   take only DynamoDB in us-east-1 away (the table is unavailable)
    DELETE /_outage/us-east-1[/SERVICE]  bring it back
    GET    /_outage                      what is away (JSON list)
"""
from __future__ import annotations

import http.client
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/")
_CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class UpstreamError(Exception):
    """The emulator behind the switch failed a forwarded request (printed, unlike a client going away)."""


class RegionSwitch(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream: str) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        target = urlsplit(upstream)
        self.upstream_host, self.upstream_port = target.hostname or "127.0.0.1", target.port or 80
        self.down: set[str] = set()
        self._lock = threading.Lock()

    def set_down(self, region: str, down: bool) -> None:
        with self._lock:
            (self.down.add if down else self.down.discard)(region)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-connection (reset, closed while we wrote) is routine: every
        client of the stack drops its keep-alive connections when it stops. Anything else, the
        emulator's failures (UpstreamError) among them, is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="region-switch", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: RegionSwitch
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:  # quiet: moto's own log has every request
        pass

    def _control(self) -> bool:
        if not self.path.startswith("/_outage"):
            return False
        region = self.path.removeprefix("/_outage").strip("/")
        if self.command in ("POST", "DELETE") and region:
            self.server.set_down(region, self.command == "POST")
        body = json.dumps(sorted(self.server.down)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return True

    def _forward(self) -> None:
        if self._control():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        scope = _SCOPE.search(self.headers.get("Authorization", ""))
        if scope and (scope.group(1) in self.server.down or f"{scope.group(1)}/{scope.group(2)}" in self.server.down):
            self.close_connection = True  # the region is unreachable: no answer at all
            self.connection.close()
            return
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as error:  # the client gets no answer, as from a dead endpoint
            upstream.close()
            raise UpstreamError(f"the emulator at {self.server.upstream_host}:{self.server.upstream_port} "
                                f"failed {self.command} {self.path}: {error!r}") from error
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

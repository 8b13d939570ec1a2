"""What the local stack's two HTTP relays share: the region switch in front of moto's server
(local/outage.py) and the Global API in front of the two apps (local/global_api.py)."""
from __future__ import annotations

import http.client
import sys
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class UpstreamError(Exception):
    """The server behind a relay failed a forwarded request (printed, unlike a client going away)."""


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True
    thread_name = "relay"

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away mid-connection (reset, closed while we wrote) is routine: every
        client of the stack drops its keep-alive connections when it stops. Anything else, the
        upstream's failures (UpstreamError) among them, is printed as socketserver does."""
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=self.thread_name, daemon=True)
        thread.start()
        return thread


class RelayHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, and Nagle's algorithm off: a relay writes each answer's headers and
    body in two sends, and with Nagle on the body waits for the client's delayed ACK (about 40 ms
    on Linux) on every call."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def drop(handler: BaseHTTPRequestHandler) -> None:
    """No answer at all, as from an endpoint that cannot be reached."""
    handler.close_connection = True
    handler.connection.close()


def reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def relay(handler: BaseHTTPRequestHandler, host: str, port: int, body: bytes | None,
          extra_headers: Mapping[str, str] | None = None, timeout: float = 60) -> None:
    """Forward the handler's request to host:port and write the answer back, with `extra_headers`."""
    upstream = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
    try:
        upstream.request(handler.command, handler.path, body=body, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as error:  # the client gets no answer, as from a dead endpoint
        upstream.close()
        raise UpstreamError(f"{host}:{port} failed {handler.command} {handler.path}: {error!r}") from error
    handler.send_response(response.status, response.reason)
    for name, value in response.getheaders():
        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
            handler.send_header(name, value)
    for name, value in (extra_headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
    upstream.close()

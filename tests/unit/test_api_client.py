"""The operator's API client: a deployed stage's requests are signed with SigV4 (checked on a real
HTTP server that records what arrives), the local stack's are not, and an error answer says why."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from ops.api import Api, ApiError


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        status, body = (404, {"error": {"code": "not_found", "message": "No team 'x'.", "details": []}}) \
            if "missing" in self.path else (200, {"ok": True})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.seen = []
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_signed_request_carries_a_sigv4_authorization_for_execute_api(server: str, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert Api(server, region="eu-west-1", sign=True).get("/metrics/summary", {"team": "t"}) == {"ok": True}
    (request,) = _Recorder.seen
    assert request["path"] == "/metrics/summary?team=t"
    assert request["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in request["authorization"] and "x-amz-date" in request


def test_the_local_stack_is_not_signed_and_a_deployed_url_is(server: str) -> None:
    Api(server).get("/health")
    assert "authorization" not in _Recorder.seen[0]
    deployed = Api("https://abc123.execute-api.us-west-2.amazonaws.com/api")
    assert (deployed.sign, deployed.region) == (True, "us-west-2")


def test_an_error_answer_names_its_status_and_message(server: str) -> None:
    with pytest.raises(ApiError, match="404: No team 'x'"):
        Api(server).get("/teams/missing")

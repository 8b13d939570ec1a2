"""Send a signed webhook delivery to the running local stack, as GitHub, GitLab, PagerDuty or a
CDEvents producer would: `python -m local send-webhook SOURCE FILE`.

FILE is a payload (JSON), or one of the fixtures in tests/fixtures/webhooks ({"$source", "event",
"payload"}), whose event type is used. The delivery is signed with the AWSCURRENT version of the
source's secret in the emulator's Secrets Manager, exactly as the app checks it.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import requests

from chalicelib import clients, names
from chalicelib import webhook_auth as auth
from local.emulator import EMULATOR_CREDENTIALS

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?\s*(Z|UTC|[+-]\d{2}:?\d{2})$")


def load(path: Path) -> tuple[str | None, Any]:
    """(the event type a fixture names, or None; the payload)."""
    data = json.loads(path.read_text())
    if isinstance(data, dict) and "$source" in data and "payload" in data:
        return data.get("event"), data["payload"]
    return None, data


def _times(node: Any) -> list[datetime]:
    if isinstance(node, dict):
        return [t for value in node.values() for t in _times(value)]
    if isinstance(node, list):
        return [t for value in node for t in _times(value)]
    if isinstance(node, str) and _TIME.match(node):
        return [_parse(node)]
    return []


def _parse(value: str) -> datetime:
    text = re.sub(r"\s*UTC$", "+00:00", value.replace("Z", "+00:00")).replace(" ", "T", 1)
    text = re.sub(r"\s+([+-])", r"\1", text)
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def latest_time(payload: Any) -> datetime | None:
    found = _times(payload)
    return max(found) if found else None


def shift_times(payload: Any, delta: timedelta) -> Any:
    """The payload with every timestamp string moved by `delta` (order and durations kept), so a
    published example from years ago lands in today's summary."""
    if isinstance(payload, dict):
        return {key: shift_times(value, delta) for key, value in payload.items()}
    if isinstance(payload, list):
        return [shift_times(value, delta) for value in payload]
    if isinstance(payload, str) and _TIME.match(payload):
        return (_parse(payload) + delta).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return payload


def headers(source: str, event: str | None, body: bytes, secret: str, delivery: str | None = None) -> dict[str, str]:
    """What the source sends with `body`: its content type, signature, event type and delivery id."""
    sent = {"Content-Type": "application/json", **auth.sign(source, body, secret)}
    delivery = delivery or str(uuid.uuid4())
    if source == "github":
        sent |= {"X-GitHub-Event": event or "", "X-GitHub-Delivery": delivery}
    elif source == "gitlab":
        sent |= {"X-Gitlab-Event": event or "", "X-Gitlab-Event-UUID": delivery}
    return sent


def secret(endpoint: str, source: str, stage: str = "dev", region: str = "us-east-1") -> str:
    sm = clients.secretsmanager(region, "operator", endpoint, **EMULATOR_CREDENTIALS)
    return sm.get_secret_value(SecretId=names.webhook_secret(stage, source))["SecretString"]


def send(url: str, endpoint: str, source: str, event: str | None, payload: Any, query: str = "",
         delivery: str | None = None) -> requests.Response:
    body = json.dumps(payload).encode()
    sent = headers(source, event, body, secret(endpoint, source), delivery)
    return requests.post(f"{url}/webhooks/{source}{query}", data=body, headers=sent, timeout=30)


def main(source: str, path: Path, event: str | None, recent: bool, query: str, state: dict[str, Any]) -> int:
    env = state["us-east-1"]["env"]
    named, payload = load(path)
    event = event or named
    if source in ("github", "gitlab") and not event:
        print(f"error: {path} names no event type; give it with --event (e.g. deployment_status, 'Push Hook')")
        return 2
    if recent and (latest := latest_time(payload)) is not None:
        payload = shift_times(payload, datetime.now(timezone.utc) - timedelta(seconds=1) - latest)
    url = state.get("global_url", env["HEALTH_CHECK_URL"])
    response = send(url, env["AWS_ENDPOINT_URL"], source, event, payload, query)
    print(f"{response.status_code} {response.text}")
    return 0 if response.status_code < 400 else 1

"""HTTP middleware: the error shape for every failure, the correlation id on every answer, and one
structured log line per request."""
from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Request, Response

from chalicelib import constants as C
from chalicelib.config import current_stage
from chalicelib.errors import ApiError, BodyTooLarge, InvalidJson, UnsupportedMediaType, error_body
from chalicelib.logs import log_event
from chalicelib.metrics import emf_fields

# What a route's logic returns: the status code and the JSON body (app.py makes the Response).
Reply = tuple[int, dict[str, Any]]

_CORRELATION_ID = re.compile(rf"^[A-Za-z0-9._:/=+-]{{1,{C.MAX_CORRELATION_ID_LENGTH}}}$")


def read_json(headers: Mapping[str, str], raw_body: bytes | str) -> Any:
    """A request body declared as JSON, within the size limit, decoded; the 4xx for each way it is not."""
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not JSON; send 'Content-Type: application/json'.")
    raw = raw_body.encode() if isinstance(raw_body, str) else raw_body
    if len(raw) > C.MAX_BODY_BYTES:
        raise BodyTooLarge(f"The body is {len(raw)} bytes; the limit is {C.MAX_BODY_BYTES}.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidJson("The body is not valid JSON.") from None


def correlation_id(headers: Mapping[str, str] | None) -> str:
    """The caller's X-Correlation-Id when it is sane, else a new one."""
    supplied = headers.get(C.CORRELATION_HEADER.lower()) if headers else None
    if isinstance(supplied, str) and _CORRELATION_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def handle_http(event: Request, get_response: Callable[[Request], Response]) -> Response:
    started = time.perf_counter()
    cid = correlation_id(event.headers)
    error_code = None
    try:
        response = get_response(event)
    except ApiError as error:
        response = Response(body=error.body(), status_code=error.status)
        error_code = error.code
    if response.status_code == 500:
        # Chalice already logged the exception; the client gets the error shape and no internals.
        response = Response(
            body=error_body("internal_error", "An internal error occurred; it has been logged.",
                            [{"correlation_id": cid}]),
            status_code=500,
        )
        error_code = "internal_error"
    response.headers[C.CORRELATION_HEADER] = cid
    status = response.status_code
    # A refusal the API chose (4xx, or 503 from a standby or an overloaded table) is a warning;
    # an internal error or an unhealthy deep health check is an error.
    level = "ERROR" if status >= 500 and error_code in (None, "internal_error") else (
        "WARNING" if status >= 400 else "INFO")
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    path = (event.context or {}).get("resourcePath")
    # The request's log line is also its metric record (EMF): one line, no extra call.
    measured = {"Requests": (1, "Count"), "ClientErrors": (int(400 <= status < 500), "Count"),
                "ServerErrors": (int(status >= 500), "Count"), "Latency": (duration_ms, "Milliseconds")}
    log_event(level, "request", correlation_id=cid, method=event.method, route=path, status=status,
              duration_ms=duration_ms, error_code=error_code,
              **emf_fields(measured, {"Stage": current_stage(), "Route": f"{event.method} {path}"}))
    return response

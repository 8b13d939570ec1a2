"""Structured logs: one JSON object per line on stdout, which Lambda sends to CloudWatch Logs.

Every HTTP request (chalicelib.http) and every scheduled, stream or event run (`logged_run`) writes
exactly one line with its outcome and duration. Records carry identifiers and outcomes only: never
request bodies or secrets.
"""
from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib import constants as C
from chalicelib.aws_errors import reason
from chalicelib.config import current_region, current_stage
from chalicelib.errors import ApiError
from chalicelib.times import format_time, utc_now

T = TypeVar("T")
E = TypeVar("E")  # the event a handler is given: a Chalice event object, or a plain dict


def log_event(level: str, message: str, **fields: Any) -> None:
    """One log record with the service, stage, region and function it came from."""
    record = {
        "time": format_time(utc_now()),
        "level": level,
        "message": message,
        "service": C.DELIVERY_SERVICE,
        "stage": current_stage(),
        "region": current_region(),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        **fields,
    }
    print(json.dumps(record, default=str, separators=(",", ":")), file=sys.stdout, flush=True)


def _run_id(event: object) -> str:
    """The correlation id of a run: the event's own id (EventBridge) or its first record's (streams)."""
    if hasattr(event, "to_dict"):
        event = event.to_dict()
    if isinstance(event, dict):
        if event.get("id"):
            return str(event["id"])
        records = event.get("Records") or []
        if records and isinstance(records[0], dict) and records[0].get("eventID"):
            return str(records[0]["eventID"])
    return "unknown"


def _causes(error: BaseException) -> dict[str, str]:
    """What a failed run's log line says of why: our message, and what AWS answered (an error code
    or the kind of failure), never a body or a secret."""
    fields = {"detail": reason(error)} if isinstance(error, ApiError) else {}
    if error.__cause__ is not None:
        fields["cause"] = reason(error.__cause__)
        if error.__cause__.__cause__ is not None:
            fields["aws_error"] = reason(error.__cause__.__cause__)
    return fields


def logged_run(handler: str) -> Callable[[Callable[[E], T]], Callable[[E], T]]:
    """Wrap a non-HTTP handler so each run writes one line: the outcome, the duration and the result
    summary it returned; a failure is logged at ERROR and re-raised so Lambda retries it."""
    def wrap(function: Callable[[E], T]) -> Callable[[E], T]:
        @functools.wraps(function)
        def run(event: E) -> T:
            started = time.perf_counter()
            fields = {"handler": handler, "correlation_id": _run_id(event)}
            try:
                result = function(event)
            except Exception as error:
                log_event("ERROR", "run", **fields, status="error", error=type(error).__name__,
                          **_causes(error), duration_ms=round((time.perf_counter() - started) * 1000, 2))
                raise
            log_event("INFO", "run", **fields, status="ok", result=result if isinstance(result, dict) else None,
                      duration_ms=round((time.perf_counter() - started) * 1000, 2))
            return result
        return run
    return wrap

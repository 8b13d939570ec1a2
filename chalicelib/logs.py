"""Structured logs: one JSON object per line on stdout, which Lambda sends to CloudWatch Logs."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

from chalicelib import constants as C


def log_event(level: str, message: str, **fields: Any) -> None:
    """One log record with the service, stage, region and function it came from. Callers pass
    identifiers and outcomes only: never request bodies or secrets."""
    record = {
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "level": level,
        "message": message,
        "service": C.DELIVERY_SERVICE,
        "stage": os.environ.get("APP_STAGE", "dev"),
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local"),
        **fields,
    }
    print(json.dumps(record, default=str, separators=(",", ":")), file=sys.stdout, flush=True)

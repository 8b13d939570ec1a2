"""X-Ray tracing: on in deployed stages (`"xray": true` in .chalice/config.json), off locally.

aws-xray-sdk is imported and boto3/requests are patched only when tracing is on, so a cold start
with tracing off pays nothing for it. Lambda sets AWS_XRAY_DAEMON_ADDRESS when the function's
tracing is active; AWS_XRAY_SDK_ENABLED=false turns it off whatever else is set (the local stack).
"""
from __future__ import annotations

import os
from collections.abc import Mapping


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("AWS_XRAY_DAEMON_ADDRESS")) and env.get("AWS_XRAY_SDK_ENABLED", "").lower() != "false"


def enable_tracing(env: Mapping[str, str] | None = None) -> bool:
    """Patch boto3 (botocore) and requests for X-Ray when tracing is on; True when it did."""
    if not tracing_enabled(env):
        return False
    from aws_xray_sdk.core import patch

    patch(("botocore", "requests"))
    return True

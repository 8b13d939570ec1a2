"""X-Ray tracing: on in deployed stages, off locally.

A deployed stage sets `"xray": true` (Lambda's active tracing) and XRAY_TRACING=true in
.chalice/config.json. Only then is aws-xray-sdk imported and a library patched, and only the library
a function uses: botocore when the first client is made, requests in the health check. A cold start
with tracing off pays nothing for it. AWS_XRAY_SDK_ENABLED=false turns it off whatever else is set
(the local stack). A package built without vendor/ (no aws-xray-sdk) runs untraced, with a warning.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from chalicelib import constants as C
from chalicelib.logs import log_event

_PATCHED: set[str] = set()


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get(C.ENV_XRAY_TRACING, "").lower() == "true" and env.get("AWS_XRAY_SDK_ENABLED", "").lower() != "false"


def enable_tracing(libraries: tuple[str, ...], env: Mapping[str, str] | None = None) -> bool:
    """Patch `libraries` ("botocore", "requests") for X-Ray when tracing is on; True when they are."""
    if not tracing_enabled(env):
        return False
    wanted = tuple(name for name in libraries if name not in _PATCHED)
    if not wanted:
        return True
    try:
        from aws_xray_sdk.core import patch
    except ImportError:
        log_event("WARNING", "tracing unavailable",
                  detail="XRAY_TRACING is on but aws-xray-sdk is not in the package (deploy with make deploy or "
                         "make package, which vendor it); running untraced")
        return False
    patch(wanted)
    _PATCHED.update(wanted)
    return True

"""HTTP middleware: the error shape for every failure, and the correlation id on every answer."""
from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Request, Response

from chalicelib import constants as C
from chalicelib.errors import ApiError, error_body

log = logging.getLogger("devops_metrics")
_CORRELATION_ID = re.compile(rf"^[A-Za-z0-9._:/=+-]{{1,{C.MAX_CORRELATION_ID_LENGTH}}}$")


def correlation_id(headers: Any) -> str:
    """The caller's X-Correlation-Id when it is sane, else a new one."""
    supplied = headers.get(C.CORRELATION_HEADER.lower()) if headers else None
    if isinstance(supplied, str) and _CORRELATION_ID.match(supplied):
        return supplied
    return uuid.uuid4().hex


def handle_http(event: Request, get_response: Callable[[Request], Response]) -> Response:
    cid = correlation_id(event.headers)
    try:
        response = get_response(event)
    except ApiError as error:
        response = Response(body=error.body(), status_code=error.status)
    if response.status_code == 500:
        # Chalice already logged the exception; the client gets the error shape and no internals.
        response = Response(
            body=error_body("internal_error", "An internal error occurred; it has been logged.",
                            [{"correlation_id": cid}]),
            status_code=500,
        )
    response.headers[C.CORRELATION_HEADER] = cid
    return response

"""API errors and the one error shape every 4xx/5xx answer uses."""
from __future__ import annotations

from typing import Any

from chalice.app import ChaliceUnhandledError


class ApiError(ChaliceUnhandledError):
    """An error with an HTTP status, a stable machine-readable code and a human message.

    It derives from ChaliceUnhandledError so that Chalice lets it reach the HTTP middleware
    (chalicelib.http), which turns it into the error shape, instead of answering 500 itself.
    """

    status = 400
    code = "bad_request"

    def __init_subclass__(cls, status: int = 400, code: str = "bad_request", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status, cls.code = status, code

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


class ValidationFailed(ApiError, status=400, code="validation_error"):
    """The body or the query parameters are not what the API accepts."""


class InvalidJson(ApiError, status=400, code="invalid_json"):
    """The body does not parse as JSON."""


class InvalidNextToken(ApiError, status=400, code="invalid_next_token"):
    """A page token this API did not issue for this query."""


class Unauthorized(ApiError, status=401, code="unauthorized"):
    """A webhook delivery without its source's valid signature or token."""


class NotFound(ApiError, status=404, code="not_found"):
    """No event has this identity (or it was deleted)."""


class PreconditionFailed(ApiError, status=412, code="precondition_failed"):
    """A create-only post (If-None-Match: *) named an event that exists."""


class BodyTooLarge(ApiError, status=413, code="body_too_large"):
    """The body is over the size limit."""


class UnsupportedMediaType(ApiError, status=415, code="unsupported_media_type"):
    """The body is not declared as JSON."""


class StandbyRegion(ApiError, status=503, code="standby_region"):
    """A write sent to the standby region."""


class LeaseExpired(ApiError, status=503, code="lease_expired"):
    """A write to the active region while its write lease has run out: it could not confirm, through
    its peer, that no failover happened."""


class Unavailable(ApiError, status=503, code="service_unavailable"):
    """DynamoDB kept failing after the client's retries; the caller should retry later."""

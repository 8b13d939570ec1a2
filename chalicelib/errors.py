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

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


class ValidationFailed(ApiError):
    status = 400
    code = "validation_error"


class InvalidJson(ApiError):
    status = 400
    code = "invalid_json"


class InvalidNextToken(ApiError):
    status = 400
    code = "invalid_next_token"


class IdConflict(ApiError):
    status = 409
    code = "id_conflict"


class BodyTooLarge(ApiError):
    status = 413
    code = "body_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class StandbyRegion(ApiError):
    status = 503
    code = "standby_region"


class Unavailable(ApiError):
    """DynamoDB kept failing after the client's retries; the caller should retry later."""

    status = 503
    code = "service_unavailable"

"""What a failed AWS call means: one classification for the app and the operator tools.

botocore raises ClientError for an answer that is an error (its code says which) and BotoCoreError
when no usable answer came (a dropped connection, a timeout, an unreachable endpoint). The DynamoDB
layer (chalicelib.dynamodb) turns what outlived botocore's retries into our own 503 (Unavailable).
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import ApiError

# What a call to AWS can end in once botocore's retries are spent: our own 503 (an ApiError from
# the DynamoDB layer), another service error, or no answer at all. A caller that must go on when a
# region or a service is away catches these, and nothing wider.
AWS_ERRORS: tuple[type[Exception], ...] = (ApiError, ClientError, BotoCoreError)

# Codes that mean "try again later": throttling and the service's own trouble.
RETRYABLE_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "LimitExceededException",
})
CONDITION_FAILED = "ConditionalCheckFailedException"
# A TransactWriteItems cancellation reason: this operation's condition did not hold.
TRANSACT_CONDITION_FAILED = "ConditionalCheckFailed"


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError ('' for anything else)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def is_condition_failed(error: BaseException) -> bool:
    return error_code(error) == CONDITION_FAILED


def is_transient(error: ClientError) -> bool:
    """Throttling or a 5xx: the request may succeed if sent again later."""
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    return error_code(error) in RETRYABLE_CODES or status >= 500


def is_missing_stack(error: BaseException) -> bool:
    """CloudFormation's answer for a stack that does not exist (a ValidationError, told by its text)."""
    return isinstance(error, ClientError) and "does not exist" in str(error)


def reason(error: BaseException) -> str:
    """A short, safe account of a failure for a report or an e-mail: our message, the AWS error
    code, or the kind of failure; never a stack trace or a request."""
    if isinstance(error, ApiError):
        return error.message
    return error_code(error) or type(error).__name__


def first_line(error: BaseException) -> str:
    """The first line of an error's text, for an operator's terminal."""
    return (str(error).splitlines() or [type(error).__name__])[0]

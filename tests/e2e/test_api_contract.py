"""The API against its own OpenAPI document, on the running local stack: schemathesis generates
valid and invalid requests for every operation from the document GET /openapi.json serves, and
every answer must be no 5xx, a status and a body the document declares for it; a request the API
rejects must store nothing. Bounded: a fixed number of examples per operation and mode."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks

from chalicelib import clients, names, openapi
from chalicelib import constants as C
from local.emulator import EMULATOR_CREDENTIALS
from tests.e2e.stack import StackProcess, running

pytestmark = pytest.mark.e2e

EXAMPLES = 15  # per operation and generation mode
BUDGET_SECONDS = 600.0  # the whole run; about 3 minutes on 2 cores
CHECKS = [schemathesis.checks.not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_schema_conformance,
          openapi_checks.response_headers_conformance]


@pytest.fixture(scope="module")
def stack() -> Iterator[StackProcess]:
    with running("--no-demo-data") as stack:
        yield stack


@pytest.fixture(scope="module")
def served(stack: StackProcess) -> str:
    """The stack's URL, once it serves the document the tests are generated from."""
    assert requests.get(f"{stack.url}/openapi.json", timeout=10).json() == openapi.document()
    return stack.url


@pytest.fixture(scope="module")
def deadline() -> float:
    return time.monotonic() + BUDGET_SECONDS


def _schema() -> Any:
    # Loaded from the generated document at collection (the stack is not up yet); `served` checks
    # that the stack serves the same one.
    config = schemathesis.Config()
    config.projects.default.generation.update(modes=["positive", "negative"], max_examples=EXAMPLES,
                                              deterministic=True)
    return schemathesis.openapi.from_dict(openapi.document(), config=config)


def stored_events(stack: StackProcess) -> int:
    """Event items and identity records in the primary table (what a request could have stored; not
    the daily rollups, which the stream handler writes a moment after an earlier accepted post)."""
    ddb = clients.client("dynamodb", "us-east-1", "operator", stack.endpoint, **EMULATOR_CREDENTIALS)
    return sum(page["Count"] for page in ddb.get_paginator("scan").paginate(
        TableName=names.table("dev"), Select="COUNT",
        FilterExpression="begins_with(pk, :m) AND NOT begins_with(sk, :r)",
        ExpressionAttributeValues={":m": {"S": C.EVENT_PK_PREFIX}, ":r": {"S": C.ROLLUP_SK_PREFIX}}))


schema = _schema()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_matches_the_document_and_a_rejected_request_stores_nothing(
        case: Any, stack: StackProcess, served: str, deadline: float) -> None:
    assert time.monotonic() < deadline, f"the contract run is over its {BUDGET_SECONDS:.0f} s budget"
    if case.method.upper() != case.operation.method.upper():
        return  # a method the route lacks: chalice local's server answers those itself (API Gateway does, in AWS)
    writes = case.method in ("POST", "DELETE")
    before = stored_events(stack) if writes else 0
    response = case.call_and_validate(base_url=served, checks=CHECKS)
    if writes and 400 <= response.status_code < 500:
        assert stored_events(stack) == before, f"{case.method} {case.path} answered {response.status_code} and stored"

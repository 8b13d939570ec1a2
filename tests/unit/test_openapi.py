"""The OpenAPI document: generated from the models, committed as docs/openapi.json without drift,
valid OpenAPI 3.1, and describing every route the app has."""
from __future__ import annotations

import json
from pathlib import Path

from chalice.test import Client

import app as app_module
from chalicelib import openapi
from ops.templates import ROOT

COMMITTED = Path(ROOT) / "docs" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == openapi.rendered(), "the models changed: run `make openapi` and commit it"


def test_it_is_a_valid_openapi_3_1_document() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(openapi.document())
    assert openapi.document()["openapi"] == "3.1.0"
    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}
    assert operations == {
        "POST /metrics", "GET /metrics", "GET /metrics/summary", "GET /metrics/trends",
        "GET /metrics/{kind}/{event_id}", "DELETE /metrics/{kind}/{event_id}", "GET /teams", "PUT /teams/{team}",
        "GET /teams/{team}", "DELETE /teams/{team}", "GET /health", "GET /openapi.json", "POST /webhooks/{source}"}


def test_it_names_every_route_the_app_serves() -> None:
    routes = {(method, path) for path, entry in app_module.app.routes.items() for method in entry}
    documented = {(method.upper(), path) for path, ops in openapi.document()["paths"].items() for method in ops}
    assert routes == documented


def test_the_app_serves_it_without_auth() -> None:
    with Client(app_module.app) as client:
        response = client.http.get("/openapi.json")
    assert response.status_code == 200
    assert json.loads(response.body) == openapi.document()

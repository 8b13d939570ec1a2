"""The API's OpenAPI 3.1 document, generated from the pydantic models the handlers validate with
(chalicelib.models, chalicelib.reads, chalicelib.event_by_id) and answer with (chalicelib.responses).

GET /openapi.json serves it; docs/openapi.json is a copy a test holds equal to it, so a change to a
model that is not in the committed document fails CI (`make openapi` writes it again).
"""
from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import __version__
from chalicelib import constants as C
from chalicelib import responses as R
from chalicelib.event_by_id import IdentityParams
from chalicelib.models import Event
from chalicelib.reads import HealthParams, ListParams, SummaryParams, TrendParams
from chalicelib.teams import TeamBody
from chalicelib.webhooks import WebhookQuery


class Batch(BaseModel):
    """1 to 100 events in one request."""

    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=C.MAX_EVENTS_PER_REQUEST)


class PostBody(RootModel[Annotated[Union[Event, Batch], Field()]]):
    """One event, or {"events": [...]}."""


_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (PostBody, "validation"),
    (R.PostResult, "serialization"), (R.ErrorBody, "serialization"), (R.EventPage, "serialization"),
    (R.StoredEvent, "serialization"), (R.Summary, "serialization"), (R.Health, "serialization"),
    (TeamBody, "validation"), (R.Team, "serialization"), (R.TeamList, "serialization"), (R.Trends, "serialization"),
    (R.WebhookResult, "serialization"), (R.WebhookIgnored, "serialization"),
]
_REF = "#/components/schemas/{model}"
_SIGV4: list[dict[str, list[str]]] = [{"sigv4": []}]
_CORRELATION = {"X-Correlation-Id": {"description": "the caller's correlation id, or a new one",
                                     "schema": {"type": "string"}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "headers": _CORRELATION,
            "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {400: "invalid input (the details name each field)", 404: "no such event or team",
               412: "If-None-Match: * and an event in the request exists", 413: "body over 256 KiB",
               415: "not application/json", 503: "the standby region, or DynamoDB unavailable: retry"}
    return {str(status): _json(R.ErrorBody, meaning[status]) for status in statuses}


def _query(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A params model as query parameters: one per field, with its schema and whether it is required."""
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": _present(field)}
            for name, field in schema["properties"].items()]


def _present(field: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without pydantic's `null` branch: a query string leaves an
    absent parameter out, it never sends null."""
    branches = [b for b in field.get("anyOf", []) if b != {"type": "null"}]
    if len(branches) != 1:
        return field
    return {**{k: v for k, v in field.items() if k not in ("anyOf", "default")}, **branches[0]}


def _path(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


@cache
def document() -> dict[str, Any]:
    _, top = models_json_schema(_MODELS, ref_template=_REF)
    kind = {"type": "string", "enum": list(C.KINDS)}
    event_id = {"type": "string", "minLength": 1, "maxLength": C.MAX_ID_LENGTH, "pattern": C.ID_PATTERN}
    identity = [_path("kind", kind, "the event's kind"), _path("event_id", event_id, "the event's id"),
                *_query(IdentityParams)]
    team = _path("team", {"type": "string", "minLength": 1, "maxLength": C.MAX_SERVICE_LENGTH,
                          "pattern": C.NAME_PATTERN}, "the team's name")
    return {
        "openapi": "3.1.0",
        "info": {"title": "DevOps Metrics", "version": __version__,
                 "description": "Deployment, build, incident and gauge events, and the DORA summary. "
                                "See docs/api.md."},
        "paths": {
            "/metrics": {
                "post": {
                    "operationId": "postMetrics", "summary": "Store events as revisions of their identities",
                    "security": _SIGV4,
                    "parameters": [{"name": "If-None-Match", "in": "header", "required": False,
                                    "description": "'*': create only; 412 when an event in the request exists",
                                    "schema": {"type": "string", "enum": ["*"]}}],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(PostBody)}}},
                    "responses": {"201": _json(R.PostResult, "stored"), **_errors(400, 412, 413, 415, 503)},
                },
                "get": {
                    "operationId": "listMetrics", "summary": "List events, newest first", "security": _SIGV4,
                    "parameters": _query(ListParams),
                    "responses": {"200": _json(R.EventPage, "one page of events"), **_errors(400, 503)},
                },
            },
            "/metrics/summary": {
                "get": {
                    "operationId": "metricsSummary",
                    "summary": "DORA's five metrics and time to restore, of one service",
                    "security": _SIGV4, "parameters": _query(SummaryParams),
                    "responses": {"200": _json(R.Summary, "the summary"), **_errors(400, 404, 503)},
                },
            },
            "/metrics/trends": {
                "get": {
                    "operationId": "metricsTrends", "summary": "The metrics per week or month, oldest first",
                    "security": _SIGV4, "parameters": _query(TrendParams),
                    "responses": {"200": _json(R.Trends, "the trends"), **_errors(400, 404, 503)},
                },
            },
            "/metrics/{kind}/{event_id}": {
                "get": {
                    "operationId": "getEvent", "summary": "One event at its current revision", "security": _SIGV4,
                    "parameters": identity,
                    "responses": {"200": _json(R.StoredEvent, "the event"), **_errors(400, 404, 503)},
                },
                "delete": {
                    "operationId": "deleteEvent", "summary": "Delete one event (in both regions)",
                    "security": _SIGV4, "parameters": identity,
                    "responses": {"204": {"description": "deleted", "headers": _CORRELATION},
                                  **_errors(400, 404, 503)},
                },
            },
            "/teams": {
                "get": {
                    "operationId": "listTeams", "summary": "Every team", "security": _SIGV4,
                    "responses": {"200": _json(R.TeamList, "the teams"), **_errors(503)},
                },
            },
            "/teams/{team}": {
                "put": {
                    "operationId": "putTeam", "summary": "Create or replace a team", "security": _SIGV4,
                    "parameters": [team],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(TeamBody)}}},
                    "responses": {"201": _json(R.Team, "created"), "200": _json(R.Team, "replaced"),
                                  **_errors(400, 413, 415, 503)},
                },
                "get": {
                    "operationId": "getTeam", "summary": "One team", "security": _SIGV4, "parameters": [team],
                    "responses": {"200": _json(R.Team, "the team"), **_errors(400, 404, 503)},
                },
                "delete": {
                    "operationId": "deleteTeam", "summary": "Delete a team (its services' events stay)",
                    "security": _SIGV4, "parameters": [team],
                    "responses": {"204": {"description": "deleted", "headers": _CORRELATION},
                                  **_errors(400, 404, 503)},
                },
            },
            "/health": {
                "get": {
                    "operationId": "health", "summary": "This region's health (public)", "security": [],
                    "parameters": _query(HealthParams),
                    "responses": {"200": _json(R.Health, "healthy"), "503": _json(R.Health, "unhealthy"),
                                  **_errors(400)},
                },
            },
            "/webhooks/{source}": {
                "post": {
                    "operationId": "receiveWebhook",
                    "summary": "A delivery from GitHub, GitLab, PagerDuty or a CDEvents producer (public; "
                               "signed with the source's secret, docs/webhooks.md)",
                    "security": [],
                    "parameters": [_path("source", {"type": "string", "enum": list(C.WEBHOOK_SOURCES)},
                                         "who sends the delivery"), *_query(WebhookQuery)],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "200": _json(R.WebhookResult, "recorded, or a delivery seen before"),
                        "202": _json(R.WebhookIgnored, "a type the service does not record"),
                        "400": _json(R.ErrorBody, "not JSON, or a field the mapping reads is missing"),
                        "401": _json(R.ErrorBody, "no signature, or one no live version of the secret makes"),
                        "404": _json(R.ErrorBody, "no such source"),
                        "413": _json(R.ErrorBody, "body over 1 MiB"),
                        "415": _json(R.ErrorBody, "not application/json"),
                        "503": _json(R.ErrorBody, "the standby region, or AWS unavailable: retry"),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi", "summary": "This document (public)", "security": [],
                    "responses": {"200": {"description": "the OpenAPI document", "headers": _CORRELATION,
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {
            "schemas": top["$defs"],
            "securitySchemes": {"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
                                          "description": "AWS Signature Version 4 (IAM auth at API Gateway)",
                                          "x-amazon-apigateway-authtype": "awsSigv4"}},
        },
    }


def rendered() -> str:
    """The document as docs/openapi.json holds it."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(rendered(), end="")

"""Query-parameter validation for the routes: a pydantic model per route, and one 400 for all."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.errors import ValidationFailed


class QueryParams(BaseModel):
    # Built on first use, not at import: a cold start that serves GET /health builds only its own.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


P = TypeVar("P", bound=QueryParams)


def parse_query(model: type[P], query: Mapping[str, str] | None) -> P:
    """The query string validated by `model`; ValidationFailed names every bad parameter."""
    try:
        return model.model_validate(dict(query or {}), context={})
    except ValidationError as error:
        details = [{"field": ".".join(str(p) for p in err["loc"]) or "(query)",
                    "message": err["msg"].removeprefix("Value error, "), "type": err["type"]}
                   for err in error.errors(include_input=False, include_url=False)]
        raise ValidationFailed("Invalid query parameters.", details) from None

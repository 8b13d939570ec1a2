"""Opaque page tokens for GET /metrics.

A token carries one cursor per kind and a fingerprint of the query it belongs to. It is plain
base64url JSON, so it is opaque rather than secret; what makes a forged token harmless is that every
field is checked on the way in: a token for another query, another partition or with a malformed key
is a 400, and a well-formed one can only move the reader within the partition it already may read.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.errors import InvalidNextToken
from chalicelib.events import DONE, Cursor, EventQuery
from chalicelib.keys import event_pk, gsi_pk
from chalicelib.times import format_time

_TOKEN_VERSION = 1
_MAX_TOKEN_LENGTH = 4096


def encode_token(query: EventQuery, cursors: Mapping[str, Cursor]) -> str | None:
    """The token for the next page, or None when every kind is exhausted."""
    if all(cursors.get(kind) == DONE for kind in query.kinds):
        return None
    payload = {"v": _TOKEN_VERSION, "q": query.fingerprint(), "c": {k: cursors.get(k) for k in query.kinds}}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: EventQuery) -> dict[str, Cursor]:
    """Cursors from a client's token; raises InvalidNextToken for anything this query did not issue."""
    if not token:
        return {}
    if len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidNextToken("next_token is not a token this API issued.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidNextToken("next_token is not a token this API issued.") from None
    if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION:
        raise InvalidNextToken("next_token is not a token this API issued.")
    if payload.get("q") != query.fingerprint():
        raise InvalidNextToken("next_token belongs to a different query; repeat the query's parameters unchanged.")
    cursors = payload.get("c")
    if not isinstance(cursors, dict) or set(cursors) != set(query.kinds):
        raise InvalidNextToken("next_token is not a token this API issued.")
    return {kind: _checked_cursor(cursor, kind, query) for kind, cursor in cursors.items()}


def _checked_cursor(cursor: Any, kind: str, query: EventQuery) -> Cursor:
    """A cursor must be a key this query could have served: right partition, right kind, parts that
    agree with each other, and a timestamp inside the query's window."""
    if cursor is None or cursor == DONE:
        return cursor  # type: ignore[no-any-return]
    names = query.key_names()
    if not isinstance(cursor, dict) or set(cursor) != set(names) or not all(
        isinstance(v, str) and 0 < len(v) <= 1024 for v in cursor.values()
    ):
        raise InvalidNextToken("next_token is not a token this API issued.")
    sk = _SORT_KEY.match(cursor["sk"])
    if sk is None or sk["kind"] != kind:
        raise InvalidNextToken("next_token is not a token this API issued.")
    if query.service is not None:
        consistent = cursor["pk"] == event_pk(query.environment, query.service)
    else:
        gsi = _GSI_SORT_KEY.match(cursor["gsi1sk"])
        consistent = (
            gsi is not None
            and cursor["gsi1pk"] == gsi_pk(kind, query.environment)
            and cursor["pk"] == event_pk(query.environment, gsi["service"])
            and (gsi["ts"], gsi["id"]) == (sk["ts"], sk["id"])
        )
    low = format_time(query.since) if query.since else ""
    high = format_time(query.until) if query.until else "~"
    if not consistent or not low <= sk["ts"] <= high:
        raise InvalidNextToken("next_token is not a token this API issued.")
    return {name: cursor[name] for name in names}


_TS = r"(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)"
_ID = r"(?P<id>[A-Za-z0-9._:-]+)"
_SORT_KEY = re.compile(rf"^(?P<kind>[a-z]+)#{_TS}#{_ID}$")
_GSI_SORT_KEY = re.compile(rf"^{_TS}#(?P<service>[A-Za-z0-9._-]+)#{_ID}$")

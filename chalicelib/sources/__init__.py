"""What a webhook delivery says, in the service's own terms. One module per source maps its payloads
(github, gitlab, pagerduty, cdevents); this one holds what they share. Pure: a mapping reads a decoded
payload and returns drafts of events (in POST /metrics's schema), pushes, or the reason it ignores
the delivery. docs/webhooks.md lists every rule with the source's field names.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chalicelib import constants as C
from chalicelib.errors import ValidationFailed
from chalicelib.times import format_time, parse_time

_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_NOT_ID = re.compile(r"[^A-Za-z0-9._:-]+")
# GitLab's hook times: "2021-04-28 21:50:00 +0200", "2021-04-28 21:50:00 UTC" (or ISO-8601).
_GITLAB_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*(UTC|Z|[+-]\d{2}:?\d{2})?$")


class MappingError(ValidationFailed):
    """A delivery whose payload lacks, or mistypes, a field its mapping reads: 400 naming the field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"The webhook payload cannot be read: {path} {message}.",
                         [{"field": path, "message": message, "type": "webhook_payload"}])


@dataclass(frozen=True)
class CommitRef:
    sha: str
    timestamp: str  # ISO-8601 UTC


@dataclass(frozen=True)
class Push:
    """Commits a repository received, in the order the source lists them."""

    repository: str
    commits: tuple[CommitRef, ...]


@dataclass(frozen=True)
class Ships:
    """A deployment whose commits come from its repository's pushes (chalicelib.commit_log)."""

    repository: str
    sha: str


@dataclass(frozen=True)
class Draft:
    """One event, in POST /metrics's schema, before the URL's overrides and validation."""

    event: dict[str, Any]
    ships: Ships | None = None  # find its commits in the commit log
    keep: tuple[str, ...] = ()  # fields the stored revision has that this one cannot know


@dataclass(frozen=True)
class Mapped:
    event_type: str  # what the source calls the delivery, e.g. "deployment_status" or "incident.resolved"
    drafts: tuple[Draft, ...] = ()
    pushes: tuple[Push, ...] = ()
    heads: tuple[Push, ...] = ()  # a build's head commit: lead time's fallback when no push holds a sha
    ignored: str | None = None  # set when nothing here is recorded: the type and why, as 202 says it


def ignore(event_type: str, what: str | None = None) -> Mapped:
    return Mapped(event_type, ignored=what or event_type)


def get(payload: Any, path: str, kind: type | tuple[type, ...] = str, required: bool = True) -> Any:
    """The value at a dotted path of the payload, checked for its type; MappingError names the path."""
    value = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            if not required:
                return None
            raise MappingError(path, "is missing (its parent is not an object)")
        value = value.get(part)
        if value is None:
            if required:
                raise MappingError(path, "is missing")
            return None
    expected = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
        names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in expected)
        raise MappingError(path, f"must be {names}")
    return value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list",
               bool: "true or false"}


def text_id(payload: Any, path: str) -> str:
    """An id field (number or string) as an event id."""
    value = get(payload, path, (str, int))
    fitted = _NOT_ID.sub("-", str(value)).strip("-")[:C.MAX_ID_LENGTH]
    if not fitted:
        raise MappingError(path, "holds no usable id")
    return fitted


def fit_name(value: str, path: str, limit: int = C.MAX_SERVICE_LENGTH) -> str:
    """A source's name (repository, project, service, environment) made to fit the service pattern:
    each run of other characters becomes '-'."""
    fitted = _NOT_NAME.sub("-", value).strip("-")[:limit]
    if not fitted:
        raise MappingError(path, "holds no usable name")
    return fitted


def time_at(payload: Any, path: str, required: bool = True) -> str | None:
    """A timestamp field as ISO-8601 UTC. Accepts ISO-8601 and GitLab's "2021-04-28 21:50:00 +0200"."""
    value = get(payload, path, str, required)
    if value is None:
        return None
    return iso(value, path)


def iso(value: str, path: str) -> str:
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = _GITLAB_TIME.match(value.strip())
        if match:
            day, clock, zone = match.groups()
            zone = "+00:00" if zone in (None, "UTC", "Z") else zone
            try:
                parsed = datetime.fromisoformat(f"{day}T{clock}{zone}")
            except ValueError:
                parsed = None
    if parsed is None:
        raise MappingError(path, "must be a timestamp, e.g. 2026-11-01T12:00:00Z")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:
        raise MappingError(path, "is out of range") from None
    if utc.year < 1970:
        raise MappingError(path, "must not be before 1970")
    return format_time(utc)


def seconds_between(start: str, end: str) -> float:
    return max(0.0, (parse_time(end) - parse_time(start)).total_seconds())


def commit_refs(payload: Any, path: str, sha_field: str = "id") -> tuple[CommitRef, ...]:
    """A list of commit objects ({id, timestamp}) as commit references; entries without a usable
    sha or time are skipped (a source may list merge placeholders)."""
    commits = get(payload, path, list, required=False) or []
    refs = []
    for index, commit in enumerate(commits):
        sha = commit.get(sha_field) if isinstance(commit, Mapping) else None
        stamp = commit.get("timestamp") if isinstance(commit, Mapping) else None
        if isinstance(sha, str) and re.match(C.SHA_PATTERN, sha) and isinstance(stamp, str):
            try:
                refs.append(CommitRef(sha.lower(), iso(stamp, f"{path}[{index}].timestamp")))
            except MappingError:
                continue  # a commit without a usable time gives no lead time; the others still do
    return tuple(refs)


def head_commit(payload: Any, path: str, sha_field: str = "id") -> CommitRef | None:
    commit = get(payload, path, dict, required=False)
    if not commit:
        return None
    sha, stamp = commit.get(sha_field), commit.get("timestamp")
    if isinstance(sha, str) and re.match(C.SHA_PATTERN, sha) and isinstance(stamp, str):
        try:
            return CommitRef(sha.lower(), iso(stamp, f"{path}.timestamp"))
        except MappingError:
            return None
    return None


def ships(repository: str, sha: Any) -> Ships | None:
    """Where a deployment's commits are found, when it names a usable sha (else it has none)."""
    if isinstance(sha, str) and re.match(C.SHA_PATTERN, sha):
        return Ships(repository, sha.lower())
    return None


def attributes(**values: str | None) -> dict[str, str]:
    """The source's own references kept on an event (its `attributes`), the empty ones left out."""
    return {name: value[:C.MAX_ATTRIBUTE_VALUE_LENGTH] for name, value in values.items()
            if isinstance(value, str) and value}

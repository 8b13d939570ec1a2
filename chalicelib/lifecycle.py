"""Where an event is in its life: a deployment runs, then finishes; an incident opens, may be
acknowledged, is resolved, and may reopen. Pure functions over validated events and stored bodies."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FINISHED_DEPLOYMENT_STATUSES = frozenset({"success", "failure", "rolled_back"})  # the ones metrics count
FAILED_DEPLOYMENT_STATUSES = frozenset({"failure", "rolled_back"})


def progress(event: Mapping[str, Any]) -> int:
    """How far along its lifecycle an event is (0 at the start), from its fields: a validated event's
    (dict(event)) or a stored body. Of two revisions a source stamped with the same time, the one
    further along wins, so a tie never moves an event backwards."""
    if event.get("kind") == "deployment":
        return int(event.get("status") in FINISHED_DEPLOYMENT_STATUSES)
    if event.get("kind") == "incident":
        return 2 if event.get("resolved_at") is not None else int(event.get("acknowledged_at") is not None)
    return 0


def is_finished(deployment: Mapping[str, Any]) -> bool:
    """A stored deployment that has ended (success, failure or rollback), not one in progress."""
    return deployment.get("status") in FINISHED_DEPLOYMENT_STATUSES

"""Where the health check keeps its alert state: in both regions' tables, so that it remembers
what it last sent even while its own table is the thing that is down. The newest copy wins."""
from __future__ import annotations

from dataclasses import replace

from chalicelib import alerts
from chalicelib.aws_errors import AWS_ERRORS, reason
from chalicelib.control import ControlStore


class AlertStateUnavailable(Exception):
    """No table could store the alert state, so no alert is sent (the metrics still are)."""


def load_state(stores: list[ControlStore], key: str) -> alerts.AlertState | None:
    """The newest copy of this region's alert state among the tables that answer."""
    found = []
    for store in stores:
        try:
            record = store.get(key)
        except AWS_ERRORS:
            continue
        if record:
            found.append(alerts.AlertState.from_record(record))
    return max(found, key=lambda s: (s.seq, s.updated_at), default=None)


def save_state(stores: list[ControlStore], key: str, state: alerts.AlertState,
               notes: list[str]) -> alerts.AlertState:
    """Write the state, one save later than the last, to every table that answers; at least one
    must. A table that does not answer is noted in `notes`."""
    state = replace(state, seq=state.seq + 1)
    saved = 0
    for store in stores:
        try:
            store.put(key, state.as_record())
            saved += 1
        except AWS_ERRORS as error:
            note = f"alert state not saved in {store.region}: {reason(error)}"
            if note not in notes:
                notes.append(note)
    if not saved:
        raise AlertStateUnavailable("; ".join(notes) or "no table to keep the alert state in")
    return state

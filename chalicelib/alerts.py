"""When the health check e-mails: on a change of state only, with flapping damped and a hard cap.

The state machine is pure (`next_state`): the previous state and this run's result in, the new state
and the alert to send (if any) out. What it remembers is a short history of pass/fail results:
  - healthy -> unhealthy on the first failing run (one alert, however many failing runs follow);
  - unhealthy -> healthy after HEALTH_RECOVERY_RUNS healthy runs in a row (one "recovered" alert);
  - HEALTH_FLAP_CHANGES or more changes within the last HEALTH_HISTORY_RUNS runs -> one "flapping"
    alert, then silence until the history has settled, when one alert gives the settled state.
And what the subscribers were last told (`notified`), and when: an "unhealthy" or "flapping" e-mail
goes out only ALERT_MIN_INTERVAL_MINUTES after the previous e-mail (it waits, and is dropped if the
state is back to what they were told by then); a "recovered" one is never held back. So whatever
the pattern of results, at most two e-mails go out per interval.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

from chalicelib import constants as C
from chalicelib.times import format_time, parse_time

Alerted = Literal["healthy", "unhealthy", "flapping"]
AlertKind = Literal["unhealthy", "recovered", "flapping"]
PASS, FAIL = "O", "F"


@dataclass(frozen=True)
class AlertState:
    alerted: Alerted  # what the last alert told the subscribers
    history: str  # the last runs' results, oldest first: "O" passed, "F" failed
    since: str  # when `alerted` began (a stored time, chalicelib.times)
    updated_at: str  # the run that wrote this state
    failed: str = ""  # the failing checks of that run, comma-separated
    notified: Alerted = "healthy"  # what the last e-mail told the subscribers
    notified_at: str = ""  # when it was sent (a stored time; empty: never)
    pending_subject: str = ""  # an alert decided but not yet published (sent by the next run)
    pending_message: str = ""
    seq: int = 0  # bumped by every save: the newest copy wins when the two regions' copies differ

    @classmethod
    def initial(cls, now: datetime) -> AlertState:
        return cls("healthy", "", format_time(now), format_time(now))

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> AlertState:
        return cls(alerted=record["alerted"], history=str(record.get("history", "")), since=str(record["since"]),
                   updated_at=str(record["updated_at"]), failed=str(record.get("failed", "")),
                   notified=record.get("notified", record["alerted"]), notified_at=str(record.get("notified_at", "")),
                   pending_subject=str(record.get("pending_subject", "")),
                   pending_message=str(record.get("pending_message", "")), seq=int(record.get("seq", 0)))

    def as_record(self) -> dict[str, str | int]:
        return {"alerted": self.alerted, "history": self.history, "since": self.since,
                "updated_at": self.updated_at, "failed": self.failed, "notified": self.notified,
                "notified_at": self.notified_at, "pending_subject": self.pending_subject,
                "pending_message": self.pending_message, "seq": self.seq}

    @property
    def changes(self) -> int:
        return sum(1 for a, b in pairwise(self.history) if a != b)

    def with_pending(self, subject: str, message: str) -> AlertState:
        return replace(self, pending_subject=subject, pending_message=message)


def next_state(previous: AlertState | None, healthy: bool, failed: list[str],
               now: datetime) -> tuple[AlertState, AlertKind | None]:
    """The state after this run, and the alert this run sends (None: stay silent)."""
    previous = previous or AlertState.initial(now)
    history = (previous.history + (PASS if healthy else FAIL))[-C.HEALTH_HISTORY_RUNS:]
    state = replace(previous, history=history, updated_at=format_time(now), failed=",".join(failed))
    alerted = _transition(state, healthy)
    if alerted is not None:
        state = replace(state, alerted=alerted, since=format_time(now))
    if state.alerted == state.notified:
        return state, None
    kind: AlertKind = "recovered" if state.alerted == "healthy" else state.alerted
    if kind != "recovered" and state.notified_at and \
            now - parse_time(state.notified_at) < timedelta(minutes=C.ALERT_MIN_INTERVAL_MINUTES):
        return state, None  # too soon after the last e-mail: it waits (and lapses if the state returns)
    return replace(state, notified=state.alerted, notified_at=format_time(now)), kind


def _transition(state: AlertState, healthy: bool) -> Alerted | None:
    """The new state of the machine, or None when it stays where it is."""
    if state.alerted == "flapping":
        if state.changes > C.HEALTH_FLAP_SETTLED_CHANGES:
            return None
        return "healthy" if healthy else "unhealthy"
    if state.changes >= C.HEALTH_FLAP_CHANGES:
        return "flapping"
    if state.alerted == "healthy" and not healthy:
        return "unhealthy"
    if state.alerted == "unhealthy" and state.history.endswith(PASS * C.HEALTH_RECOVERY_RUNS):
        return "healthy"
    return None

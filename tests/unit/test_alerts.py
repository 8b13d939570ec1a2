"""When the health check e-mails: state changes only, recovery after consecutive healthy runs, and
flapping damped to a bounded number of e-mails (chalicelib.alerts)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from itertools import pairwise

from chalicelib import alerts
from chalicelib import constants as C

T0 = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)


def run(results: str, state: alerts.AlertState | None = None) -> tuple[list[str | None], alerts.AlertState | None]:
    """Feed a string of results ("O" passed, "F" failed) through the state machine; the alerts sent."""
    sent = []
    for i, result in enumerate(results):
        state, kind = alerts.next_state(state, result == "O", [] if result == "O" else ["table"],
                                        T0 + timedelta(minutes=5 * i))
        sent.append(kind)
    return sent, state


def test_a_healthy_service_is_never_alerted() -> None:
    sent, state = run("O" * 30)
    assert sent == [None] * 30 and state is not None and state.alerted == "healthy"


def test_ten_failing_runs_in_a_row_send_one_alert() -> None:
    sent, state = run("F" * 10)
    assert sent == ["unhealthy"] + [None] * 9
    assert state is not None and state.alerted == "unhealthy" and state.failed == "table"


def test_recovery_is_one_alert_after_consecutive_healthy_runs() -> None:
    sent, _ = run("FFF" + "O" * 6)
    assert sent.count("recovered") == 1
    assert sent.index("recovered") == 3 + C.HEALTH_RECOVERY_RUNS - 1


def test_a_single_healthy_run_inside_an_outage_sends_nothing() -> None:
    sent, state = run("FFFOFFF")
    assert sent == ["unhealthy"] + [None] * 6 and state is not None and state.alerted == "unhealthy"


def test_a_check_failing_every_other_run_sends_one_alert_then_one_flapping_alert() -> None:
    sent, state = run("FO" * 20)
    assert [kind for kind in sent if kind] == ["unhealthy", "flapping"]
    assert state is not None and state.alerted == "flapping"


def test_flapping_ends_with_one_alert_giving_the_settled_state() -> None:
    sent, state = run("FO" * 5 + "O" * C.HEALTH_HISTORY_RUNS)
    assert [kind for kind in sent if kind] == ["unhealthy", "flapping", "recovered"]
    assert state is not None and state.alerted == "healthy"


def test_no_pattern_of_results_sends_a_storm_of_e_mails() -> None:
    """Given a day of runs (288) failing at random at every rate, and every periodic pattern of f
    failing runs then p passing ones, the e-mails per day stay at most one per 40 minutes, where
    mailing every change of result would send up to 287."""
    rng = random.Random(7)
    days = ["".join("F" if rng.random() < rate else "O" for _ in range(288))
            for rate in (rng.random() for _ in range(500))]
    days += [(("F" * f + "O" * p) * 288)[:288] for f in range(1, 10) for p in range(1, 40)]
    worst = max(sum(1 for kind in run(day)[0] if kind) for day in days)
    naive = max(sum(1 for a, b in pairwise(day) if a != b) for day in days)
    assert naive == 287
    assert worst <= 288 // 8, worst


def test_the_state_survives_a_round_trip_through_its_record() -> None:
    _, state = run("OOFF")
    assert state is not None
    assert alerts.AlertState.from_record(state.as_record()) == state

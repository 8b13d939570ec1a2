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


def sent_times(results: str) -> list[tuple[int, str]]:
    """(run index, kind) of every e-mail a sequence of results sends."""
    return [(i, kind) for i, kind in enumerate(run(results)[0]) if kind]


def worst_case_days() -> list[str]:
    """Days of 288 runs (every 5 minutes): random failures at every rate, every periodic pattern of f
    failing runs then p passing ones, two blips 15 minutes apart every 2h15, and the worst found by a
    hill-climbing search that flips single results to send more e-mails."""
    rng = random.Random(7)
    days = ["".join("F" if rng.random() < rate else "O" for _ in range(288))
            for rate in (rng.random() for _ in range(300))]
    days += [(("F" * f + "O" * p) * 288)[:288] for f in range(1, 10) for p in range(1, 40)]
    days.append((("FOOF" + "O" * 23) * 11)[:288])
    best = max(days, key=lambda day: len(sent_times(day)))
    for _ in range(1500):
        i = rng.randrange(288)
        candidate = best[:i] + ("O" if best[i] == "F" else "F") + best[i + 1:]
        if len(sent_times(candidate)) >= len(sent_times(best)):
            best = candidate
    return [*days, best]


def test_no_pattern_of_results_sends_more_than_two_e_mails_an_hour() -> None:
    """Whatever the results, an "unhealthy" or "flapping" e-mail comes at least an hour after the
    previous e-mail, so a day sends at most 48, where mailing every change of result sends 287."""
    days = worst_case_days()
    assert max(sum(1 for a, b in pairwise(day) if a != b) for day in days) == 287  # the naive count
    per_run = C.ALERT_MIN_INTERVAL_MINUTES // C.HEALTH_CHECK_INTERVAL_MINUTES
    worst = 0
    for day in days:
        sent = sent_times(day)
        worst = max(worst, len(sent))
        for (before, _), (after, kind) in pairwise(sent):
            assert kind == "recovered" or after - before >= per_run, (day, sent)
    assert worst <= 2 * 288 // per_run, worst


def test_an_outage_soon_after_a_recovery_e_mail_waits_for_the_hour_and_is_sent_if_it_lasts() -> None:
    sent = sent_times("FOO" + "F" * 20)
    assert sent == [(0, "unhealthy"), (2, "recovered"), (2 + 12, "unhealthy")]  # 12 runs: an hour later


def test_a_blip_soon_after_a_recovery_e_mail_is_never_mailed() -> None:
    assert sent_times("FOO" + "F" + "O" * 30) == [(0, "unhealthy"), (2, "recovered")]


def test_the_state_survives_a_round_trip_through_its_record() -> None:
    _, state = run("OOFF")
    assert state is not None
    assert alerts.AlertState.from_record(state.as_record()) == state

"""Run policy decisions as pure functions: overlap, catch-up and retry backoff."""

from datetime import UTC, datetime, timedelta

import pytest

from runner import policy_rules as rules
from runner.policy_rules import Policy
from runner.schedules import Spec

HOURLY = Spec(agent_id=1, interval_minutes=60)
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BACKSTOP = timedelta(seconds=10)
DEFAULT = Policy()


def decide(
    policy=DEFAULT,
    *,
    due=T0,
    now=T0 + timedelta(seconds=1),
    in_flight=None,
    cancelling=False,
    started=None,
    spec=HOURLY,
):
    return rules.decide_due_slot(
        spec,
        policy,
        due=due,
        now=now,
        in_flight=in_flight,
        in_flight_cancelling=cancelling,
        backstop=BACKSTOP,
        in_flight_started=started,
    )


def test_a_due_slot_with_nothing_in_flight_runs_and_the_next_slot_follows():
    decision = decide()
    assert (decision.action, decision.slot, decision.missed) == ("run", T0, 0)
    assert decision.next_run == T0 + timedelta(hours=1) and decision.note == ""


def test_latest_runs_once_after_downtime_and_counts_the_missed_slots():
    decision = decide(now=T0 + timedelta(hours=5, minutes=10))
    assert (decision.action, decision.slot, decision.missed) == ("run", T0, 5)
    assert decision.next_run == T0 + timedelta(hours=6)
    assert "5 missed slot(s)" in decision.note


def test_window_catch_up_runs_each_recent_missed_slot_oldest_first_and_counts_older_ones():
    policy = Policy(catchup="window", catchup_window=timedelta(minutes=150))
    now = T0 + timedelta(hours=5, minutes=10)  # slots 12:00 .. 17:00 are due; window from 14:40
    first = decide(policy, now=now)
    assert (first.action, first.slot, first.missed) == ("run", T0 + timedelta(hours=3), 3)
    assert first.next_run == T0 + timedelta(hours=4)  # still due: the backlog goes on
    assert "3 older missed slot(s)" in first.note
    second = decide(policy, due=first.next_run, now=now + timedelta(minutes=1))
    assert (second.action, second.slot, second.missed) == ("run", T0 + timedelta(hours=4), 0)
    assert second.next_run == T0 + timedelta(hours=5)
    # While a backlog run is in flight, the next backlog slot waits for it (never two at once).
    waiting = decide(
        policy, due=second.next_run, now=now + timedelta(minutes=2), in_flight=9, started=now
    )
    assert (waiting.action, waiting.next_run) == ("wait", T0 + timedelta(hours=5))
    # ...while a slot that comes during a run meets the overlap policy (skip by default).
    later = T0 + timedelta(hours=6)
    during = decide(policy, due=later, now=later + timedelta(seconds=1), in_flight=9, started=now)
    assert during.action == "skip"


def test_window_catch_up_skips_when_every_missed_slot_is_older_than_the_window():
    policy = Policy(catchup="window", catchup_window=timedelta(minutes=30))
    decision = decide(policy, now=T0 + timedelta(hours=2, minutes=45))
    assert (decision.action, decision.slot, decision.missed) == ("skip", T0, 2)
    assert "older than the catch-up window" in decision.note
    assert decision.next_run == T0 + timedelta(hours=3)


def test_skip_records_the_slot_while_a_run_is_in_flight():
    decision = decide(in_flight=4)
    assert (decision.action, decision.slot, decision.next_run) == (
        "skip",
        T0,
        T0 + timedelta(hours=1),
    )
    assert decision.note == "Scheduled cycle skipped: the previous cycle is still running"


def test_buffer_one_keeps_the_first_slot_and_skips_a_second():
    policy = Policy(overlap="buffer_one")
    first = decide(policy, in_flight=4)
    assert (first.action, first.next_run) == ("wait", T0)
    assert first.hold_until == T0 + timedelta(hours=1)  # the row fires at the next slot
    assert "buffered" in first.note
    later = T0 + timedelta(hours=1, seconds=1)
    second = decide(policy, now=later, in_flight=4)
    assert (second.action, second.slot, second.next_run) == ("skip", T0 + timedelta(hours=1), T0)
    assert "already buffered" in second.note


def test_cancel_previous_asks_the_run_to_stop_and_then_waits_for_it():
    policy = Policy(overlap="cancel_previous")
    decision = decide(policy, in_flight=4)
    assert (decision.action, decision.slot, decision.next_run) == ("cancel_and_wait", T0, T0)
    assert decision.hold_until == T0 + timedelta(seconds=1) + BACKSTOP
    again = decide(policy, in_flight=4, cancelling=True)
    assert (again.action, again.next_run) == ("wait", T0)


@pytest.mark.parametrize(
    ("status", "attempt", "attempts", "retry_on", "expected"),
    [
        ("failed", 0, 2, "failed,timed_out", True),
        ("failed", 2, 2, "failed,timed_out", False),
        ("timed_out", 0, 1, "failed", False),
        ("abandoned", 0, 1, "abandoned", True),
        ("succeeded", 0, 3, "failed,timed_out,abandoned", False),
        ("failed", 0, 0, "failed", False),
    ],
)
def test_which_outcomes_retry(status, attempt, attempts, retry_on, expected):
    assert (
        rules.should_retry(status=status, attempt=attempt, attempts=attempts, retry_on=retry_on)
        is expected
    )


def test_backoff_grows_with_each_attempt_has_jitter_and_is_stable():
    delays = [
        rules.retry_delay(base_seconds=10, attempt=n, key=f"slot:{n}", max_seconds=10_000)
        for n in range(1, 7)
    ]
    seconds = [d.total_seconds() for d in delays]
    for n, value in enumerate(seconds, start=1):
        assert 10 * 2 ** (n - 1) <= value <= 1.5 * 10 * 2 ** (n - 1)
    assert all(a < b for a, b in zip(seconds, seconds[1:], strict=False))
    assert len({value / 2**n for n, value in enumerate(seconds)}) > 1  # jittered, not exact
    again = rules.retry_delay(base_seconds=10, attempt=3, key="slot:3", max_seconds=10_000)
    assert again == delays[2]
    capped = rules.retry_delay(base_seconds=3600, attempt=10, key="k", max_seconds=3600)
    assert capped == timedelta(seconds=3600)
